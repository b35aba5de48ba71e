import { uuid7 } from '../src/events/uuid7.ts';
let t0 = performance.now(); let x = 0;
for (let i = 0; i < 1_000_000; i++) x += uuid7(1_764_000_000_000 + (i >> 4)).length;
console.log('uuid7 µs', ((performance.now() - t0) / 1000).toFixed(3), x);
