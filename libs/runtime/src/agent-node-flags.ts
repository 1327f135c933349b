/**
 * The node flags the agent runs with, wherever it is started for real: its image's ENTRYPOINT
 * (docker/Dockerfile.agent, checked against this by tools/deploy.spec.ts), the local agent of `npm start`
 * and `npm run bench:agent`. A 4 MB young generation keeps an agent with 10,000 tests under 150 MB
 * resident: V8's default 16 MB costs some 30 MB more for no measurable CPU gain. Measured and not taken
 * (npm run bench:agent): `--optimize-for-size` saved some 10 MB with 10,000 tests but cost half as much
 * CPU again at 1,000 probes a second; a 2 MB young generation saved 3 MB for 17 % more CPU there.
 */
export const AGENT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
