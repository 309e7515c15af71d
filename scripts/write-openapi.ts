// Writes docs/openapi.json from the collector API's route schemas (npm run openapi).
import { writeFileSync } from 'node:fs';
import { openApiDocument } from '../collector/api/openapi.js';
import { COLLECTOR_VERSION } from '../collector/version.js';

const doc = await openApiDocument(COLLECTOR_VERSION);
writeFileSync(new URL('../docs/openapi.json', import.meta.url), `${JSON.stringify(doc, null, 2)}\n`);
console.error('docs/openapi.json written');
