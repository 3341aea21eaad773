// Opening a TCP connection to an instance for one try (TCP and Thrift modes): bounded by the
// connect timeout and the time the request has left, cut by its cancellation.
import { connect, type LookupFunction, type Socket } from 'node:net';
import type { Instance } from '../discovery/provider-table.js';
import { DEADLINE_CODE, errorCode, type TryOutcome } from '../outcome.js';
import { DEADLINE_PASSED, type Cancellation } from './cancellation.js';

/**
 * The connected socket, or how the try ended: any error before `connect` is a connect failure
 * (nothing was sent), a timeout is one too (CONNECT_TIMEOUT); the deadline or the caller
 * leaving end it as `timeout` or `client-aborted`.
 */
export function connectInstance(instance: Instance, options: { readonly timeoutMs: number; readonly cancel: Cancellation; readonly allowHalfOpen?: boolean; readonly lookup?: LookupFunction | undefined }): Promise<Socket | TryOutcome> {
  const { cancel } = options;
  return new Promise((resolve) => {
    const socket = connect({ host: instance.host, port: instance.port, allowHalfOpen: options.allowHalfOpen ?? false, ...(options.lookup ? { lookup: options.lookup } : {}) });
    const fail = (outcome: TryOutcome) => {
      clearTimeout(timer);
      cancel.onCancel(undefined);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => fail({ kind: 'connect-failed', code: 'CONNECT_TIMEOUT' }), Math.max(1, options.timeoutMs));
    cancel.onCancel((reason) => fail(reason === DEADLINE_PASSED ? { kind: 'timeout', code: DEADLINE_CODE } : { kind: 'client-aborted', responseStarted: false }));
    const onError = (err: Error) => fail({ kind: 'connect-failed', code: errorCode(err) });
    socket.once('error', onError);
    socket.once('connect', () => {
      clearTimeout(timer);
      cancel.onCancel(undefined);
      socket.off('error', onError);
      socket.setNoDelay(true);
      resolve(socket);
    });
  });
}
