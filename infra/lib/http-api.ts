import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import * as logs from 'aws-cdk-lib/aws-logs';

/**
 * Gives an HTTP API's default stage JSON access logs (request id, caller, route, status,
 * latency, integration error) and a throttle, so a flood cannot run up the functions' bill.
 */
export function addHttpApiAccessLogs(
  api: apigw.HttpApi,
  retention: logs.RetentionDays,
  throttle: { rateLimit: number; burstLimit: number },
  routes: { route: apigw.HttpRoute; key: string; rateLimit: number; burstLimit: number }[] = [],
): void {
  const stage = api.defaultStage?.node.defaultChild as apigw.CfnStage | undefined;
  if (!stage) throw new Error(`${api.node.path} has no default stage`);
  const logGroup = new logs.LogGroup(api, 'AccessLogs', {
    logGroupName: `/aws/apigateway/${Stack.of(api).stackName}-${api.node.id}`,
    retention,
    removalPolicy: RemovalPolicy.DESTROY,
  });
  stage.accessLogSettings = {
    destinationArn: logGroup.logGroupArn,
    format: JSON.stringify({
      requestId: '$context.requestId',
      ip: '$context.identity.sourceIp',
      requestTime: '$context.requestTime',
      routeKey: '$context.routeKey',
      status: '$context.status',
      responseLength: '$context.responseLength',
      latencyMs: '$context.responseLatency',
      integrationError: '$context.integrationErrorMessage',
    }),
  };
  stage.defaultRouteSettings = {
    throttlingRateLimit: throttle.rateLimit,
    throttlingBurstLimit: throttle.burstLimit,
  };
  if (routes.length > 0) {
    stage.routeSettings = Object.fromEntries(
      routes.map(({ key, rateLimit, burstLimit }) => [
        key,
        // A JSON map in CloudFormation's own spelling: CDK passes it through as it is.
        { ThrottlingRateLimit: rateLimit, ThrottlingBurstLimit: burstLimit },
      ]),
    );
    // The stage names the routes by key: they must exist first.
    for (const { route } of routes) stage.node.addDependency(route);
  }
}
