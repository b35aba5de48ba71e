// How the PostgreSQL pool reads a failure: which ones are the server's (503, the breaker hears of
// them), which leave a commit in doubt, and which statements commit by themselves.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { HopError } from '../../src/domain/errors.ts';
import {
  commitsByItself,
  isSyncWaitCancelled,
  noteDriverError,
  serverFailureOf,
} from '../../src/storage/postgres/pg-failures.ts';
import { isServerFailure } from '../../src/storage/postgres/pg-pool.ts';

function dbError(code: string, message = 'boom'): pg.DatabaseError {
  const e = new pg.DatabaseError(message, message.length, 'error');
  e.code = code;
  return e;
}

test('a server that cannot take writes now (read-only, in recovery) is a server failure', () => {
  assert.equal(
    serverFailureOf(dbError('25006', 'cannot execute INSERT in a read-only transaction')),
    'read_only',
  );
  assert.equal(serverFailureOf(dbError('55000', 'recovery is in progress')), 'read_only');
  assert.equal(isServerFailure(dbError('25006')), true);
});

test('shutdowns and connection exceptions mean the connection is lost; a cancel is only busy', () => {
  for (const code of ['57P01', '57P02', '57P03', '08006', '08001'])
    assert.equal(serverFailureOf(dbError(code)), 'lost');
  assert.equal(serverFailureOf(dbError('57014', 'canceling statement due to statement timeout')), 'busy');
  assert.equal(serverFailureOf(dbError('53300', 'too many connections')), 'busy');
});

test('an error in what was asked is not a server failure', () => {
  for (const code of ['23505', '42601', '22P02', '40001']) {
    assert.equal(serverFailureOf(dbError(code)), null);
    assert.equal(isServerFailure(dbError(code)), false);
  }
  // Another 55000 is about the statement, not the server's role.
  assert.equal(serverFailureOf(dbError('55000', 'currval of sequence "s" is not yet defined')), null);
});

test('a plain Error is a bug, not a server failure, unless the driver raised it for a connection', () => {
  assert.equal(isServerFailure(new TypeError('x is undefined')), false);
  assert.equal(isServerFailure(new Error('could not draw a free code')), false);
  const lost = new Error('Connection terminated unexpectedly');
  noteDriverError(lost);
  assert.equal(serverFailureOf(lost), 'lost');
  noteDriverError(dbError('23505')); // a server's answer stays what its SQLSTATE says
  assert.equal(serverFailureOf(dbError('23505')), null);
  const reset = Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
  assert.equal(serverFailureOf(reset), 'lost');
});

test('unavailable and write_in_doubt are server failures; other Hop errors are not', () => {
  assert.equal(isServerFailure(new HopError('unavailable', 'down')), true);
  assert.equal(isServerFailure(new HopError('write_in_doubt', 'maybe')), true);
  assert.equal(isServerFailure(new HopError('alias_taken', 'taken')), false);
});

test('the synchronous-replication cancel warnings are recognised, whichever way the wait was cut', () => {
  const cancel = {
    code: '01000',
    message: 'canceling wait for synchronous replication due to user request',
    detail:
      'The transaction has already committed locally, but might not have been replicated to the standby.',
  };
  const terminate = {
    code: '57P01',
    message:
      'canceling the wait for synchronous replication and terminating connection due to administrator command',
  };
  assert.equal(isSyncWaitCancelled(cancel, false), true);
  assert.equal(isSyncWaitCancelled(terminate, false), true);
  // A translated message: recognised while committing, where no other 01000 warning comes.
  const translated = { code: '01000', message: 'annulation de l’attente', detail: '' };
  assert.equal(isSyncWaitCancelled(translated, true), true);
  assert.equal(isSyncWaitCancelled(translated, false), false);
  assert.equal(
    isSyncWaitCancelled({ code: '42P07', message: 'relation already exists, skipping' }, true),
    false,
  );
});

test('statements that commit by themselves: writes, writing CTEs and locking reads', () => {
  assert.equal(commitsByItself('INSERT INTO links VALUES ($1)'), true);
  assert.equal(commitsByItself('  update links SET x = 1'), true);
  assert.equal(commitsByItself('DELETE FROM t'), true);
  assert.equal(commitsByItself('WITH ins AS (INSERT INTO t SELECT 1 RETURNING *) SELECT * FROM ins'), true);
  assert.equal(commitsByItself('SELECT outcome FROM idempotency_keys WHERE key = $1\n FOR KEY SHARE'), true);
  assert.equal(commitsByItself('SELECT 1'), false);
  assert.equal(commitsByItself('WITH x AS (SELECT 1) SELECT * FROM x'), false);
  assert.equal(commitsByItself('SELECT updated_at FROM links'), false);
  assert.equal(commitsByItself('BEGIN'), false);
});
