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

/** AppSync's resolvers: each root field and the function that resolves it, exported from the Rust field groups (`chatctl resolvers`). */
export const RESOLVERS_PATH = path.join(INFRA_ROOT, 'appsync-resolvers.json');
/** The SSM parameters each function reads, exported from the Rust code (`chatctl parameters`). */
export const SSM_PARAMETERS_PATH = path.join(INFRA_ROOT, 'ssm-parameters.json');

/** AppSync's resolvers as the Rust field groups say (`chatctl resolvers`). */
export function appsyncResolvers(): { typeName: string; fieldName: string; function: string }[] {
  return JSON.parse(fs.readFileSync(RESOLVERS_PATH, 'utf8'));
}
