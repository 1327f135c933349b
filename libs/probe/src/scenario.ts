import type { ProbeConfig, Step } from '@wsmon/contracts';

/**
 * The steps a configuration runs. Without explicit steps this is the single-message form of
 * seed 001: connect, then (ping_mode message) send and await the reply, or (ping_mode
 * protocol) a ping/pong round trip, then a clean close.
 */
export function scenarioSteps(config: ProbeConfig): readonly Step[] {
  if (config.steps) return config.steps;
  const steps: Step[] = [{ type: 'connect' }];
  if (config.ping_mode === 'message' && config.send_message !== undefined) {
    steps.push({ type: 'send', message: config.send_message });
    steps.push({
      type: 'receive',
      skip_non_matching: false,
      assertions: [],
      ...(config.expect_message ? { expect_message: config.expect_message } : {}),
    });
  } else if (config.ping_mode === 'protocol') {
    steps.push({ type: 'ping' });
  }
  return steps;
}
