/**
 * Rendezvous (highest random weight) hashing: each test goes to the agent whose (test, agent) weight
 * is highest. When an agent joins or leaves, only the tests it wins or held move; every replica
 * computes the same owner from the same members, without coordination.
 */
export function rendezvousOwner(testId: string, agentIds: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestWeight = -1;
  for (const agentId of agentIds) {
    const weight = weightOf(testId, agentId);
    if (weight > bestWeight || (weight === bestWeight && best !== undefined && agentId < best)) {
      best = agentId;
      bestWeight = weight;
    }
  }
  return best;
}

/** FNV-1a over both ids, then murmur3's finaliser so that similar ids spread evenly. */
export function weightOf(testId: string, agentId: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < testId.length; i++) h = Math.imul(h ^ testId.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ 0, 0x01000193);
  for (let i = 0; i < agentId.length; i++) h = Math.imul(h ^ agentId.charCodeAt(i), 0x01000193);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
