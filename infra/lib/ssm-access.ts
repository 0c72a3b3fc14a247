import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as fs from 'fs';
import { acceptFinding } from './nag';
import { SSM_PARAMETERS_PATH } from './paths';

/**
 * The parameters below `/STACK/` that each function reads, by crate, as `chatctl parameters`
 * exports them from the Rust code (`settings::reads::BY_FUNCTION`); a Rust test keeps the file current.
 */
export function ssmParametersOf(crate: string): string[] | undefined {
  const all: Record<string, string[]> = JSON.parse(fs.readFileSync(SSM_PARAMETERS_PATH, 'utf8'));
  return all[crate];
}

/**
 * Lets `grantee` read exactly the parameters `names` (`/STACK/twilio/apiKey`, …) with
 * `GetParameters`, and decrypt those of them that are SecureStrings (SSM's encryption context
 * names the parameter). Nothing else under the stack's paths: a function holds no secret it does not use.
 */
export function grantSsmParametersRead(role: iam.Role, names: string[]): void {
  grant(role, 'ssm:GetParameters', names, (arn) => arn);
}

/**
 * Lets `grantee` read the parameters under each path with `GetParametersByPath`, and decrypt
 * their SecureStrings (for the dev-extras issuer's key, all of whose parameters it uses).
 */
export function grantSsmPathsRead(role: iam.Role, paths: string[]): void {
  grant(role, 'ssm:GetParametersByPath', paths, (arn) => `${arn}/*`);
}

function grant(role: iam.Role, action: string, names: string[], encrypted: (arn: string) => string): void {
  const scope = Stack.of(role);
  for (const p of names) {
    if (!/^\/[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(p)) throw new Error(`"${p}" is not an SSM name`);
  }
  if (names.length === 0) return;
  const parameterArn = (p: string) =>
    scope.formatArn({ service: 'ssm', resource: 'parameter', resourceName: p.slice(1), arnFormat: ArnFormat.SLASH_RESOURCE_NAME });
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'ReadOwnParameters',
      actions: [action],
      resources: names.map(parameterArn),
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'DecryptOwnSecureStrings',
      actions: ['kms:Decrypt'],
      resources: [scope.formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
      conditions: {
        StringEquals: { 'kms:ViaService': `ssm.${scope.region}.amazonaws.com` },
        StringLike: { 'kms:EncryptionContext:PARAMETER_ARN': names.map((p) => encrypted(parameterArn(p))) },
      },
    }),
  );
  acceptFinding(
    role,
    'IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]',
    'SecureStrings may be under the aws/ssm key or a key of the operator\'s choosing; the conditions ' +
      'limit kms:Decrypt to SSM decrypting this function\'s own parameters.',
  );
}
