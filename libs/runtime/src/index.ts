export { acquireDirectoryLock, DirectoryLockedError, type DirectoryLock } from './directory-lock';
