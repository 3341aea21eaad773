import test from 'ava';
import { isLostReply, isTransientZkError, ZkError } from '../../src/zookeeper/errors.js';

const error = (rc: number) => ZkError.fromRc(rc, 'create', '/a');

test('a lost reply: connection loss, operation timeout, and the out-of-order reply the C client reports for the requests of a connection it closed in a call', (t) => {
  t.deepEqual([-4, -7, -2].map((rc) => [error(rc).code, isLostReply(error(rc))]), [['CONNECTION_LOSS', true], ['OPERATION_TIMEOUT', true], ['RUNTIME_INCONSISTENCY', true]]);
  for (const rc of [-101, -110, -112, -9, -102]) t.false(isLostReply(error(rc)), error(rc).code);
  t.false(isLostReply(new Error('CONNECTION_LOSS')), 'only a ZkError');
});

test('transient: a lost reply or a session state that a reconnect ends; not an answer about the tree or the rights', (t) => {
  for (const rc of [-4, -7, -2, -9, -116, -112, -118]) t.true(isTransientZkError(error(rc)), error(rc).code);
  for (const rc of [-101, -110, -111, -102, -103, -8]) t.false(isTransientZkError(error(rc)), error(rc).code);
});
