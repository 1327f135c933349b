import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rendezvousOwner } from './rendezvous';

const tests = Array.from({ length: 2000 }, () => randomUUID());
const agents = Array.from({ length: 4 }, () => randomUUID());
const owners = (members: readonly string[]) => new Map(tests.map((t) => [t, rendezvousOwner(t, members)]));

describe('rendezvousOwner', () => {
  it('gives every test to exactly one agent, whatever the order of the members', () => {
    const forward = owners(agents);
    const backward = owners([...agents].reverse());
    expect(forward).toEqual(backward);
    for (const owner of forward.values()) expect(agents).toContain(owner);
  });

  it('spreads tests evenly over the agents', () => {
    const counts = new Map<string, number>();
    for (const owner of owners(agents).values()) counts.set(owner!, (counts.get(owner!) ?? 0) + 1);
    for (const agent of agents) {
      expect(counts.get(agent)).toBeGreaterThan(tests.length / agents.length / 1.3);
      expect(counts.get(agent)).toBeLessThan((tests.length / agents.length) * 1.3);
    }
  });

  it('moves only the lost agent’s tests when an agent leaves', () => {
    const before = owners(agents);
    const after = owners(agents.slice(1));
    for (const test of tests) {
      if (before.get(test) !== agents[0]) expect(after.get(test)).toBe(before.get(test));
      else expect(after.get(test)).not.toBe(agents[0]);
    }
  });

  it('moves to a joining agent only the tests it wins', () => {
    const joined = randomUUID();
    const before = owners(agents);
    const after = owners([...agents, joined]);
    const moved = tests.filter((t) => after.get(t) !== before.get(t));
    for (const test of moved) expect(after.get(test)).toBe(joined);
    expect(moved.length).toBeGreaterThan(0);
  });

  it('has no owner without agents', () => {
    expect(rendezvousOwner(tests[0]!, [])).toBeUndefined();
  });
});
