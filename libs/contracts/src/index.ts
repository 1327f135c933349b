export * from './config-errors';
export * from './probe-config.schema';
export * from './probe-result';
export * from './resources.schema';
export * from './secret-references';
export * from './environment';
