// Subsets by request header (a canary, a test version): `key=value[,key=value]` picks the
// instances whose metadata hold every pair (see metadataValue for where a field is looked up).
import type { Instance } from '../discovery/provider-table.js';
import { metadataValue } from './zones.js';

export type SubsetMatch = (instance: Instance) => boolean;

const PAIR = /^([A-Za-z0-9_.-]+)=([^,=]*)$/;

/** The matcher for a header value, or why it is not `key=value[,key=value]`. */
export function parseSubset(text: string): SubsetMatch | { problem: string } {
  const pairs: [string, string][] = [];
  for (const part of text.split(',')) {
    const m = PAIR.exec(part.trim());
    if (!m) return { problem: `expected key=value[,key=value], got ${JSON.stringify(text.slice(0, 200))}` };
    pairs.push([m[1]!, m[2]!.trim()]);
  }
  if (pairs.length > 16) return { problem: 'at most 16 key=value pairs' };
  return (instance) => pairs.every(([key, value]) => metadataValue(instance, key) === value);
}
