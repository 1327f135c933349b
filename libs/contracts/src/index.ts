export * from './config-errors';
export * from './probe-config.schema';
export * from './probe-result';
