/**
 * The agent's wire contract alone: the AgentService messages, client and server types. The agent
 * (and anything bundled without the control plane) imports this instead of the package's index,
 * which also brings the health and reflection services with their runtime proto loading.
 */
export * from './generated/wsmon/v1/agent';
