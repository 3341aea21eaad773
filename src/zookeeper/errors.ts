/** ZooKeeper result codes by name, as the C client numbers them. */
const CODE_NAMES: ReadonlyMap<number, string> = new Map([
  [-1, 'SYSTEM_ERROR'],
  [-2, 'RUNTIME_INCONSISTENCY'],
  [-3, 'DATA_INCONSISTENCY'],
  [-4, 'CONNECTION_LOSS'],
  [-5, 'MARSHALLING_ERROR'],
  [-6, 'UNIMPLEMENTED'],
  [-7, 'OPERATION_TIMEOUT'],
  [-8, 'BAD_ARGUMENTS'],
  [-9, 'INVALID_STATE'],
  [-100, 'API_ERROR'],
  [-101, 'NO_NODE'],
  [-102, 'NO_AUTH'],
  [-103, 'BAD_VERSION'],
  [-108, 'NO_CHILDREN_FOR_EPHEMERALS'],
  [-110, 'NODE_EXISTS'],
  [-111, 'NOT_EMPTY'],
  [-112, 'SESSION_EXPIRED'],
  [-113, 'INVALID_CALLBACK'],
  [-114, 'INVALID_ACL'],
  [-115, 'AUTH_FAILED'],
  [-116, 'CLOSING'],
  [-117, 'NOTHING'],
  [-118, 'SESSION_MOVED'],
]);

/**
 * Stable codes: the ZooKeeper result names above, plus our own for what the native client
 * never reports (BAD_CONNECT_STRING, CONNECT_TIMEOUT, BAD_PATH, CHROOT_MISSING, CLOSED).
 */
export type ZkErrorCode = string;

/** An error from ZooKeeper or from our checks in front of it, with a stable `code`. */
export class ZkError extends Error {
  override name = 'ZkError';
  readonly code: ZkErrorCode;
  readonly path: string | undefined;

  constructor(code: ZkErrorCode, message: string, options?: { path?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.path = options?.path;
  }

  /** Builds the error for a native result code `rc` of operation `op` on `path`. */
  static fromRc(rc: number, op: string, path: string): ZkError {
    const code = CODE_NAMES.get(rc) ?? `ZK_${rc}`;
    return new ZkError(code, `ZooKeeper ${op} ${path} failed: ${code} (${rc})`, { path });
  }
}

/** True when `err` is a ZkError with one of `codes`. */
export function isZkError(err: unknown, ...codes: ZkErrorCode[]): err is ZkError {
  return err instanceof ZkError && (codes.length === 0 || codes.includes(err.code));
}

/**
 * The request was sent and its reply lost with the connection: it may have been applied.
 * RUNTIME_INCONSISTENCY is how the C client ends the requests of a connection it had closed
 * inside a call (a send that failed: a server that reset it): it reconnects, the first reply
 * on the new connection does not match them, and it drops the connection again and fails them.
 */
export function isLostReply(err: unknown): err is ZkError {
  return isZkError(err, 'CONNECTION_LOSS', 'OPERATION_TIMEOUT', 'RUNTIME_INCONSISTENCY');
}

/** Errors after which the same request may succeed once the session reconnects. */
export function isTransientZkError(err: unknown): boolean {
  return isLostReply(err) || isZkError(err, 'INVALID_STATE', 'CLOSING', 'SESSION_EXPIRED', 'CLOSED', 'SESSION_MOVED');
}
