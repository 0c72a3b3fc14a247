import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { acceptFinding } from './nag';

/**
 * Lets `grantee` read the parameters under each path (`/STACK/twilio`, …) with
 * `GetParametersByPath`, and decrypt their SecureStrings, but only when SSM asks KMS on its
 * behalf for a parameter under one of those paths (SSM's encryption context names the parameter).
 */
export function grantSsmPathsRead(role: iam.Role, paths: string[]): void {
  const scope = Stack.of(role);
  for (const p of paths) {
    if (!/^\/[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*$/.test(p)) throw new Error(`"${p}" is not an SSM path`);
  }
  const parameterArn = (p: string) =>
    scope.formatArn({ service: 'ssm', resource: 'parameter', resourceName: p.slice(1), arnFormat: ArnFormat.SLASH_RESOURCE_NAME });
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'ReadOwnParameters',
      actions: ['ssm:GetParametersByPath'],
      resources: paths.map(parameterArn),
    }),
  );
  role.addToPolicy(
    new iam.PolicyStatement({
      sid: 'DecryptOwnSecureStrings',
      actions: ['kms:Decrypt'],
      resources: [scope.formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
      conditions: {
        StringEquals: { 'kms:ViaService': `ssm.${scope.region}.amazonaws.com` },
        StringLike: { 'kms:EncryptionContext:PARAMETER_ARN': paths.map((p) => `${parameterArn(p)}/*`) },
      },
    }),
  );
  acceptFinding(
    role,
    'IAM5[Resource::arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*]',
    'SecureStrings may be under the aws/ssm key or a key of the operator\'s choosing; the conditions ' +
      'limit kms:Decrypt to SSM decrypting parameters under this function\'s own paths.',
  );
}
