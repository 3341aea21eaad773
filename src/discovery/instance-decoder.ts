// Znode data -> table instances for a discovery client: decoding (see znode/instance-data.ts),
// and counting and logging unusable children once per znode version.
import type { Logger } from 'pino';
import { decodeInstanceData, type RejectReason } from '../znode/instance-data.js';
import { hostPort } from '../znode/layout.js';
import type { ChildNode } from './children-watcher.js';
import type { Instance } from './provider-table.js';

/** One child as decoded: its znode identity and version, and its instance if the data was usable. */
export interface DecodedChild {
  readonly czxid: number;
  readonly version: number;
  readonly instance: Instance | undefined;
}

export interface DecoderStats {
  readonly malformed: number;
  readonly malformedByReason: Readonly<Record<string, number>>;
}

/** Decodes children of every service of one discovery client. */
/** Why an instance address may not be used (AddressPolicy.refusal), or undefined. */
export type AddressRefusal = (host: string, port: number) => string | undefined;

export class InstanceDecoder {
  readonly #logger: Logger;
  readonly #refusal: AddressRefusal | undefined;
  readonly #seen = new Set<string>();
  readonly #byReason: Record<string, number> = {};
  #malformed = 0;

  constructor(logger: Logger, refusal?: AddressRefusal) {
    this.#logger = logger;
    this.#refusal = refusal;
  }

  /** The child's instance; unusable data is counted and logged once per znode version. */
  decode(service: string, child: ChildNode): DecodedChild {
    const stat = child.stat!;
    const result = decodeInstanceData(child.data!);
    if (!result.ok) {
      this.#noteMalformed(service, child, result.reason, result.detail);
      return { czxid: stat.czxid, version: stat.version, instance: undefined };
    }
    const { endpoint } = result;
    const refused = this.#refusal?.(endpoint.host, endpoint.port);
    if (refused) {
      this.#noteMalformed(service, child, 'forbidden_address', refused);
      return { czxid: stat.czxid, version: stat.version, instance: undefined };
    }
    const instance: Instance = Object.freeze({
      ...endpoint,
      service,
      id: child.name,
      path: child.path,
      address: hostPort(endpoint.host, endpoint.port),
      uid: `${child.path}#${stat.czxid}`,
      createdZxid: stat.czxid,
      version: stat.version,
    });
    return { czxid: stat.czxid, version: stat.version, instance };
  }

  stats(): DecoderStats {
    return { malformed: this.#malformed, malformedByReason: { ...this.#byReason } };
  }

  #noteMalformed(service: string, child: ChildNode, reason: RejectReason, detail: string): void {
    const key = `${child.path}#${child.stat?.czxid}@${child.stat?.version}`;
    if (this.#seen.has(key)) return;
    if (this.#seen.size > 100_000) this.#seen.clear();
    this.#seen.add(key);
    if (reason === 'not_alive') return; // a serverset member that is not serving: skipped, not malformed
    this.#malformed += 1;
    this.#byReason[reason] = (this.#byReason[reason] ?? 0) + 1;
    this.#logger.warn({ service, path: child.path, version: child.stat?.version, reason, detail }, 'skipping znode with unusable data');
  }
}
