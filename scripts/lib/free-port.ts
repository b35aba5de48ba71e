// A port nothing listens on at 127.0.0.1 right now. Another process may take it before the caller
// binds it: servers started on it retry with another when that happens.
import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const addr = probe.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      probe.close(() => resolvePort(port));
    });
  });
}
