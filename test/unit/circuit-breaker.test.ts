// The breaker in front of Redis calls, on a fake clock.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CircuitBreaker } from '../../src/redis/circuit-breaker.ts';

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
