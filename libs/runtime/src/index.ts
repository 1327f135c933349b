export { acquireDirectoryLock, DirectoryLockedError, type DirectoryLock } from './directory-lock';
export { AGENT_NODE_FLAGS } from './agent-node-flags';
