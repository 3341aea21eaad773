// An InstanceSource with no ZooKeeper behind it: a table the test fills (unit tests of the
// provider and the HTTP plane).
import { EventEmitter } from 'node:events';
import { ProviderTable, type Instance, type SetDelta } from '../../src/discovery/provider-table.js';
import { answerLocally, type InstanceSource, type Resolution } from '../../src/discovery/source.js';

export class FakeSource extends EventEmitter implements InstanceSource {
  readonly table = new ProviderTable({ keepLastOnEmpty: false });
  /** Names "ZooKeeper lists" (a listed name without instances resolves `empty`). */
  readonly listed = new Set<string>();
  resolves = 0;

  constructor() {
    super();
    this.table.on('change', (service: string, instances: readonly Instance[], delta: SetDelta) => this.emit('change', service, instances, delta));
  }

  /** Sets a service's instances (and lists it). */
  set(service: string, instances: readonly Instance[]): void {
    this.listed.add(service);
    this.table.replace(service, instances);
  }

  instances(service: string): readonly Instance[] | undefined {
    return this.table.get(service)?.instances;
  }

  knownServices(): string[] {
    return [...new Set([...this.listed, ...this.table.services()])].sort();
  }

  resolve(service: string): Promise<Resolution> {
    this.resolves += 1;
    return Promise.resolve(answerLocally(this.table, service, this.listed) ?? { kind: 'empty' });
  }
}
