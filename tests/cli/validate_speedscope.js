// Validate speedscope files against speedscope's own JSON schema (tests/cli/run.sh
// speedscope_schema): node validate_speedscope.js SCHEMA FILE...
// SCHEMA is dist/release/file-format-schema.json of the speedscope npm package (draft-07); the
// validator is ajv 8 (NODE_PATH points at the node_modules that holds it). Exit status 0 when
// every FILE is valid, 1 otherwise (the errors are printed).
'use strict';
const fs = require('fs');
const Ajv = require('ajv');

const [schemaPath, ...files] = process.argv.slice(2);
if (!schemaPath || files.length === 0) {
  console.error('usage: node validate_speedscope.js SCHEMA FILE...');
  process.exit(2);
}
const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
const ajv = new Ajv({allErrors: true, strict: false});
const validate = ajv.compile(schema);
let bad = 0;
for (const file of files) {
  const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  if (validate(doc)) {
    console.log(`${file}: valid against speedscope's file-format-schema.json`);
  } else {
    bad++;
    console.log(`${file}: invalid:`);
    for (const e of validate.errors.slice(0, 20)) console.log(`  ${e.instancePath} ${e.message}`);
  }
}
process.exit(bad ? 1 : 0);
