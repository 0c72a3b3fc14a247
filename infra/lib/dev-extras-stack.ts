import { CfnOutput, Duration, Stack, StackProps } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { Construct } from 'constructs';
import { DeploymentConfig } from './config';
import { addHttpApiAccessLogs } from './http-api';
import { acceptFinding } from './nag';
import { RustFunction } from './rust-function';
import { grantSsmPathsRead } from './ssm-access';

export type DevExtrasStackProps = StackProps &
  Omit<DeploymentConfig, 'stackName' | 'testStack' | 'alarmEmail' | 'webhookConcurrency' | 'notifyConcurrency'> & {
    /** The core stack's table: the token ledger, and the per-address minting counters. */
    table: dynamodb.ITable;
  };

/**
 * Development only: an open HTTP API that signs context tokens for any identity with the key in
 * `/STACK-dev-extras/chat-development/`, and publishes that key's JWKS. Anyone who can reach it
 * can sign in as anyone, so it is a stack of its own that production never deploys.
 */
export class DevExtrasStack extends Stack {
  readonly httpApi: apigw.HttpApi;

  constructor(scope: Construct, id: string, props: DevExtrasStackProps) {
    super(scope, id, props);
    const keyPath = `/${this.stackName}/chat-development`;
    const issuer = new RustFunction(this, 'IssueDevToken', {
      crate: 'issue-dev-token',
      description: 'Development context tokens (POST /token, GET /token/{xid}) and their JWKS (GET /jwks.json)',
      timeout: Duration.seconds(10),
      lambdaDir: props.lambdaDir,
      logRetention: props.logRetention,
      environment: { DEV_EXTRAS_SSM_PATH: keyPath, NOTIFICATIONS_TABLE: props.table.tableName },
    });
    grantSsmPathsRead(issuer.role, [keyPath]);
    // Records each token and counts it against its client address (one TransactWriteItems of a
    // Put and an Update); GET /token/{xid} reads a record.
    props.table.grant(issuer.role, 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem');

    this.httpApi = new apigw.HttpApi(this, 'TokenApi', {
      apiName: `${this.stackName}-tokens`,
      description: `${this.stackName}: development context tokens`,
    });
    const integration = new HttpLambdaIntegration('IssueDevToken', issuer.fn);
    this.httpApi.addRoutes({ path: '/token', methods: [apigw.HttpMethod.POST], integration });
    this.httpApi.addRoutes({ path: '/token/{xid}', methods: [apigw.HttpMethod.GET], integration });
    this.httpApi.addRoutes({ path: '/jwks.json', methods: [apigw.HttpMethod.GET], integration });
    addHttpApiAccessLogs(this.httpApi, props.logRetention, { rateLimit: 10, burstLimit: 20 });
    acceptFinding(
      this.httpApi,
      'APIG4',
      'Open by design: a development token service for test deployments. This stack is never ' +
        'deployed with production, and only a deployment whose JWKS names its key accepts its tokens.',
    );

    new CfnOutput(this, 'devTokenUrl', {
      value: `${this.httpApi.apiEndpoint}/token`,
      description: 'POST ?identity=alex&context=general,random for a development context token',
    });
    new CfnOutput(this, 'devJwksUrl', {
      value: `${this.httpApi.apiEndpoint}/jwks.json`,
      description: 'The development key as a JWKS: put it in /STACK/chat/jwks.json to accept its tokens',
    });
  }
}
