// What the TCP listeners count, in plain integers per service (read by the metrics at scrape
// time): nothing per chunk beyond an addition.

/** How a caller's connection ended up, as counted in zkroute_tcp_connections_total. */
export type TcpConnectionOutcome = 'ok' | 'connect_failed' | 'no_providers' | 'unknown_service' | 'discovery_unavailable' | 'client_closed_early' | 'overloaded';

export interface TcpServiceStats {
  /** Connections by outcome: `ok` when an instance was connected, else why not. */
  readonly connections: Record<TcpConnectionOutcome, number>;
  /** Connections open now (connected to an instance). */
  active: number;
  /** Bytes from callers to instances, and back. */
  bytesIn: number;
  bytesOut: number;
}

export function emptyTcpStats(): TcpServiceStats {
  return {
    connections: { ok: 0, connect_failed: 0, no_providers: 0, unknown_service: 0, discovery_unavailable: 0, client_closed_early: 0, overloaded: 0 },
    active: 0,
    bytesIn: 0,
    bytesOut: 0,
  };
}
