import * as fs from 'fs';
import * as path from 'path';

/** The `infra/` folder, found from this file whether it runs from `lib/` (ts-jest) or `build/lib/` (tsc). */
export const INFRA_ROOT: string = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'cdk.json'))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no cdk.json above ${__dirname}`);
    dir = parent;
  }
  return dir;
})();

/** The AppSync schema, exported from the Rust schema (`chatctl schema`); a Rust test keeps it current. */
export const SCHEMA_PATH = path.join(INFRA_ROOT, 'schema.graphql');
/** The same with the platform API's fields (`chatctl schema --platform`), for a deployment that names a platform issuer. */
export const PLATFORM_SCHEMA_PATH = path.join(INFRA_ROOT, 'schema-platform.graphql');

/** The SSM parameters each function reads, exported from the Rust code (`chatctl parameters`). */
export const SSM_PARAMETERS_PATH = path.join(INFRA_ROOT, 'ssm-parameters.json');
