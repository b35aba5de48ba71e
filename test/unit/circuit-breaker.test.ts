// The breaker in front of Redis calls and of each PostgreSQL server, on a fake clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CircuitBreaker } from '../../src/resilience/circuit-breaker.ts';

function breaker(failureThreshold: number, coolDownMs = 1_000) {
  const clock = { now: 0 };
  const b = new CircuitBreaker({ failureThreshold, coolDownMs, now: () => clock.now });
  return { b, clock };
}

test('a closed breaker lets every call through; failures below the threshold keep it closed', () => {
  const { b } = breaker(3);
  assert.equal(b.state, 'closed');
  assert.equal(b.allow(), true);
  b.failure();
  b.failure();
  assert.equal(b.state, 'closed');
  assert.equal(b.allow(), true);
});

test('a success resets the count: only failures in a row open it', () => {
  const { b } = breaker(3);
  b.failure();
  b.failure();
  b.success();
  b.failure();
  b.failure();
  assert.equal(b.state, 'closed');
  b.failure();
  assert.equal(b.state, 'open');
});

test('an open breaker refuses every call until the cool-down has passed', () => {
  const { b, clock } = breaker(1, 1_000);
  b.failure();
  assert.equal(b.state, 'open');
  assert.equal(b.allow(), false);
  clock.now = 999;
  assert.equal(b.allow(), false);
  assert.equal(b.state, 'open');
});

test('after the cool-down one probe goes through, and the others wait for its outcome', () => {
  const { b, clock } = breaker(1, 1_000);
  b.failure();
  clock.now = 1_000;
  assert.equal(b.allow(), true);
  assert.equal(b.state, 'half-open');
  assert.equal(b.allow(), false);
  assert.equal(b.allow(), false);
});

test('a successful probe closes the breaker', () => {
  const { b, clock } = breaker(2, 1_000);
  b.failure();
  b.failure();
  clock.now = 1_500;
  assert.equal(b.allow(), true);
  b.success();
  assert.equal(b.state, 'closed');
  assert.equal(b.allow(), true);
  // The count starts again from zero.
  b.failure();
  assert.equal(b.state, 'closed');
});

test('a failed probe reopens it for another full cool-down', () => {
  const { b, clock } = breaker(3, 1_000);
  b.failure();
  b.failure();
  b.failure();
  clock.now = 1_000;
  assert.equal(b.allow(), true);
  b.failure();
  assert.equal(b.state, 'open');
  clock.now = 1_999;
  assert.equal(b.allow(), false);
  clock.now = 2_000;
  assert.equal(b.allow(), true);
});

test('a probe whose outcome never comes back is replaced after another cool-down', () => {
  const { b, clock } = breaker(1, 1_000);
  b.failure();
  clock.now = 1_000;
  assert.equal(b.allow(), true);
  clock.now = 1_999;
  assert.equal(b.allow(), false);
  clock.now = 2_000;
  assert.equal(b.allow(), true);
  assert.equal(b.state, 'half-open');
});

test('late outcomes of calls made before it opened change nothing', () => {
  const { b } = breaker(1, 1_000);
  b.failure();
  b.success();
  assert.equal(b.state, 'open');
  b.failure();
  assert.equal(b.state, 'open');
  assert.equal(b.allow(), false);
});

test('nonsense settings are refused at construction', () => {
  assert.throws(() => new CircuitBreaker({ failureThreshold: 0, coolDownMs: 1_000 }), RangeError);
  assert.throws(() => new CircuitBreaker({ failureThreshold: 1, coolDownMs: -1 }), RangeError);
});

function jittered(random: () => number) {
  const clock = { now: 0 };
  const states: string[] = [];
  const b = new CircuitBreaker({
    failureThreshold: 1,
    coolDownMs: 100,
    maxCoolDownMs: 1_000,
    now: () => clock.now,
    random,
    onChange: (s) => states.push(s),
  });
  return { b, clock, states };
}

/** Opens the breaker and fails every probe `probes` times; the cool-down then in force. */
function coolDownAfter(b: CircuitBreaker, clock: { now: number }, probes: number): number {
  b.failure();
  for (let i = 0; i < probes; i++) {
    clock.now += Math.ceil(b.retryInMs());
    assert.equal(b.allow(), true);
    b.failure();
  }
  return b.retryInMs();
}

test('with a cap, each failed probe doubles the bound of the cool-down, up to the cap', () => {
  // random() just below 1: each cool-down is (almost) its bound.
  const bounds = [0, 1, 2, 3, 4, 5].map((probes) => {
    const { b, clock } = jittered(() => 0.999_999);
    return Math.round(coolDownAfter(b, clock, probes));
  });
  assert.deepEqual(bounds, [100, 200, 400, 800, 1_000, 1_000]);
});

test('cool-downs are drawn with full jitter: anywhere from 0 to the bound', () => {
  const draws = [0, 0.25, 0.5];
  const { b, clock } = jittered(() => draws.shift() ?? 0.5);
  assert.equal(coolDownAfter(b, clock, 0), 0, 'a draw of 0: a probe may go at once');
  assert.equal(b.allow(), true);
  b.failure();
  assert.equal(b.retryInMs(), 50, 'a quarter of the second bound (200 ms)');
  clock.now += 50;
  assert.equal(b.allow(), true);
  b.failure();
  assert.equal(b.retryInMs(), 200, 'half of the third (400 ms)');
});

test('a success starts the cool-downs from the first bound again', () => {
  const { b, clock } = jittered(() => 0.999_999);
  assert.equal(Math.round(coolDownAfter(b, clock, 3)), 800);
  clock.now += Math.ceil(b.retryInMs());
  assert.equal(b.allow(), true);
  b.success();
  assert.equal(b.retryInMs(), 0);
  b.failure();
  assert.equal(Math.round(b.retryInMs()), 100);
});

test('every change of state is reported once', () => {
  const { b, clock, states } = jittered(() => 0.5);
  b.failure();
  b.failure();
  clock.now += 1_000;
  b.allow();
  b.allow();
  b.failure();
  clock.now += 1_000;
  b.allow();
  b.success();
  b.success();
  assert.deepEqual(states, ['open', 'half-open', 'open', 'half-open', 'closed']);
});

test('a cap below the first cool-down is refused', () => {
  assert.throws(
    () => new CircuitBreaker({ failureThreshold: 1, coolDownMs: 1_000, maxCoolDownMs: 500 }),
    RangeError,
  );
});
