import pkg from '../package.json' with { type: 'json' };

export const COLLECTOR_VERSION: string = pkg.version;
