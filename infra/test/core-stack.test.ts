import * as fs from 'fs';
import * as path from 'path';
import { Match } from 'aws-cdk-lib/assertions';
import { SSM_PARAMETERS_PATH } from '../lib/paths';
import { CORE_FUNCTIONS, PLATFORM_ISSUER, Resource, functionId, render, resources, ssmNamesOf, ssmPathsOf, statementsOf, synth, productFunctions } from './support';

const { core } = synth();

describe('functions', () => {
  test('every handler crate is an arm64 function on provided.al2023 with its own log group', () => {
    const functions = Object.values(productFunctions(core));
    expect(functions.map((f) => f.Properties.FunctionName).sort()).toEqual(
      CORE_FUNCTIONS.map((c) => `chat-test-${c}`).sort(),
    );
    const logGroups = resources(core, 'AWS::Logs::LogGroup');
    for (const f of functions) {
      expect(f.Properties).toMatchObject({
        Runtime: 'provided.al2023',
        Architectures: ['arm64'],
        Handler: 'bootstrap',
        LoggingConfig: { LogFormat: 'JSON' },
      });
      expect(f.Properties.Environment.Variables.STACK_NAME).toBe('chat-test');
      const logGroup = logGroups[f.Properties.LoggingConfig.LogGroup.Ref];
      expect(logGroup.Properties).toMatchObject({
        LogGroupName: `/aws/lambda/${f.Properties.FunctionName}`,
        RetentionInDays: 90,
      });
    }
  });

  test('createChatToken outlasts its 12 s provisioning budget and stays within AppSync 30 s', () => {
    const timeout = (crate: string) =>
      resources(core, 'AWS::Lambda::Function')[functionId(core, `chat-test-${crate}`)].Properties.Timeout;
    expect(timeout('create-chat-token')).toBeGreaterThan(12);
    for (const crate of ['verify-token', 'create-chat-token', 'enable-channel-notifications', 'verify-email']) {
      expect(timeout(crate)).toBeLessThanOrEqual(30);
    }
    // Twilio waits 5 s for the webhook and retries: a hung call should not run for long.
    expect(timeout('twilio-webhook')).toBeLessThanOrEqual(15);
  });

  test('each function is told only the table and queues it uses', () => {
    const env = (crate: string) =>
      resources(core, 'AWS::Lambda::Function')[functionId(core, `chat-test-${crate}`)].Properties.Environment
        .Variables;
    const [table] = Object.keys(resources(core, 'AWS::DynamoDB::Table'));
    const queue = (fifo: boolean) =>
      Object.entries(resources(core, 'AWS::SQS::Queue')).find(
        ([id, q]) => !!q.Properties.FifoQueue === fifo && q.Properties.RedrivePolicy && !id.startsWith('PlatformEvents'),
      )![0];
    const [events, eventsDead] = ['PlatformEvents', 'PlatformEventsDeadLetters'].map((name) =>
      Object.keys(resources(core, 'AWS::SQS::Queue')).find((id) => id.replace(/[0-9A-F]{8}$/, '') === name)!,
    );
    // The functions whose changes make events queue them; the deliverer also dead-letters.
    const eventsEnv = { EVENTS_QUEUE_URL: { Ref: events } };
    expect(env('verify-token')).toEqual({ STACK_NAME: 'chat-test', NOTIFICATIONS_TABLE: { Ref: table } });
    expect(env('create-chat-token')).toEqual({ STACK_NAME: 'chat-test', NOTIFICATIONS_TABLE: { Ref: table }, ...eventsEnv });
    expect(env('token-routes')).toEqual({ STACK_NAME: 'chat-test', NOTIFICATIONS_TABLE: { Ref: table }, ...eventsEnv });
    expect(env('deliver-events')).toEqual({ STACK_NAME: 'chat-test', ...eventsEnv, EVENTS_DEAD_LETTER_QUEUE_URL: { Ref: eventsDead } });
    expect(env('verify-email')).toEqual({ STACK_NAME: 'chat-test', NOTIFICATIONS_TABLE: { Ref: table } });
    expect(env('enable-channel-notifications')).toEqual({
      STACK_NAME: 'chat-test',
      NOTIFICATIONS_TABLE: { Ref: table },
    });
    expect(env('twilio-webhook')).toEqual({
      STACK_NAME: 'chat-test',
      NOTIFICATIONS_TABLE: { Ref: table },
      NOTIFY_QUEUE_URL: { Ref: queue(true) },
    });
    // Its revocations and syncs queue their second sweep on the notifier's delay queue.
    expect(env('platform-api')).toEqual({
      STACK_NAME: 'chat-test',
      NOTIFICATIONS_TABLE: { Ref: table },
      NOTIFY_DELAY_QUEUE_URL: { Ref: queue(false) },
      ...eventsEnv,
    });
    const notify = env('notify');
    expect(notify).toMatchObject({
      STACK_NAME: 'chat-test',
      NOTIFICATIONS_TABLE: { Ref: table },
      NOTIFY_DELAY_QUEUE_URL: { Ref: queue(false) },
      ...eventsEnv,
    });
    const [httpApi] = Object.keys(resources(core, 'AWS::ApiGatewayV2::Api'));
    expect(render(notify.NOTIFICATIONS_PUBLIC_URL)).toBe(`\${${httpApi}.ApiEndpoint}`);
  });
});

describe('least privilege', () => {
  const exported: Record<string, string[]> = JSON.parse(fs.readFileSync(SSM_PARAMETERS_PATH, 'utf8'));
  const names = (crate: string) => exported[crate].map((n) => `/chat-test/${n}`).sort();

  test('every function of the stack reads settings, and is in the exported list', () => {
    expect(Object.keys(exported).sort()).toEqual([...CORE_FUNCTIONS].sort());
  });

  test.each(CORE_FUNCTIONS)('%s reads exactly its own SSM parameters, by name', (crate) => {
    const statements = statementsOf(core, `chat-test-${crate}`);
    expect(ssmPathsOf(statements)).toEqual([]);
    const wanted = names(crate);
    expect(ssmNamesOf(statements)).toEqual(wanted);
    const decrypt = statements.filter((s) => s.Action.includes('kms:Decrypt'));
    expect(decrypt).toHaveLength(1);
    expect(render(decrypt[0].Condition.StringEquals['kms:ViaService'])).toBe('ssm.${AWS::Region}.amazonaws.com');
    const contexts = [decrypt[0].Condition.StringLike['kms:EncryptionContext:PARAMETER_ARN']].flat().map(render);
    expect(contexts.map((arn) => arn.replace(/^.*:parameter/, '')).sort()).toEqual(wanted);
  });

  test('only the webhook may read the auth token; verify-token reads nothing of Twilio', () => {
    for (const crate of CORE_FUNCTIONS) {
      const readable = ssmNamesOf(statementsOf(core, `chat-test-${crate}`));
      expect([crate, readable.some((n) => n.endsWith('/authToken'))]).toEqual([crate, crate === 'twilio-webhook']);
    }
    expect(ssmNamesOf(statementsOf(core, 'chat-test-verify-token'))).toEqual(
      ['/chat-test/chat/audience', '/chat-test/chat/issuer', '/chat-test/chat/jwks.json', '/chat-test/chat/maxTokenLifetime'],
    );
  });

  test.each(CORE_FUNCTIONS)('%s has no wildcard action, and no wildcard resource but KMS keys', (crate) => {
    for (const s of statementsOf(core, `chat-test-${crate}`)) {
      expect(s.Effect).toBe('Allow');
      for (const action of s.Action) expect(action).not.toMatch(/\*/);
      for (const resource of s.Resource) {
        if (s.Action.includes('kms:Decrypt')) expect(resource).toMatch(/:key\/\*$/);
        else expect(resource).not.toMatch(/\*$/);
      }
    }
  });

  test('only the store functions touch the table, with no more calls than each makes', () => {
    const [table] = Object.keys(resources(core, 'AWS::DynamoDB::Table'));
    for (const crate of CORE_FUNCTIONS) {
      const onTable = statementsOf(core, `chat-test-${crate}`).filter((s) =>
        s.Resource.some((r) => r.includes(table)),
      );
      if (crate === 'verify-token') {
        // Reads revocations.
        expect(onTable).toHaveLength(1);
        expect(onTable[0].Action).toEqual(['dynamodb:GetItem']);
      } else if (crate === 'deliver-events') {
        // Sends events; keeps no record.
        expect(onTable).toHaveLength(0);
      } else if (crate === 'create-chat-token' || crate === 'token-routes') {
        // Ends the subscriptions of contexts it leaves: reads one, deletes it and its digest;
        // records each token and counts it (a Put and an Update in one transaction), and takes
        // a record back when provisioning fails. Never a query: no listing of other identities.
        expect(onTable).toHaveLength(1);
        expect(onTable[0].Action.sort()).toEqual(
          ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'],
        );
      } else {
        expect(onTable).toHaveLength(1);
        expect(onTable[0].Action.sort()).toEqual(
          ['dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query'],
        );
        expect(onTable[0].Resource).toEqual([`\${${table}.Arn}`]);
      }
    }
  });

  test.each([
    ['twilio-webhook', ['CHANNEL#*']],
    ['token-routes', ['IDENTITY#*', 'ISSUANCE#*', 'CHANNEL#*']],
  ])('%s, on the internet, reaches only the partitions it uses (dynamodb:LeadingKeys)', (crate, prefixes) => {
    const [table] = Object.keys(resources(core, 'AWS::DynamoDB::Table'));
    const onTable = statementsOf(core, `chat-test-${crate}`).filter((s) => s.Resource.some((r) => r.includes(table)));
    expect(onTable).toHaveLength(1);
    expect(onTable[0].Resource).toEqual([`\${${table}.Arn}`]);
    expect((onTable[0] as any).Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': prefixes } });
  });

  test('the other functions that touch the table are not internet-facing', () => {
    const [table] = Object.keys(resources(core, 'AWS::DynamoDB::Table'));
    const unscoped = CORE_FUNCTIONS.filter((crate) =>
      statementsOf(core, `chat-test-${crate}`).some((s) => s.Resource.some((r) => r.includes(table)) && !(s as any).Condition),
    );
    // AppSync's resolvers (behind its API key and schema) and the queue's consumer.
    expect(unscoped.sort()).toEqual(
      ['create-chat-token', 'enable-channel-notifications', 'notify', 'platform-api', 'verify-email', 'verify-token'].sort(),
    );
  });

  test('the webhook only sends message events; the notifier consumes both queues and sends only delayed work; the platform API only sends sweeps; events go one way', () => {
    const queues = resources(core, 'AWS::SQS::Queue');
    const named = (name: string) => Object.keys(queues).find((id) => id.replace(/[0-9A-F]{8}$/, '') === name)!;
    const main = (fifo: boolean) => named(fifo ? 'MessageEvents' : 'DigestFlushes');
    const [events, eventsDead] = [named('PlatformEvents'), named('PlatformEventsDeadLetters')];
    const sqsRights = (crate: string) => {
      const rights: Record<string, string[]> = {};
      for (const s of statementsOf(core, `chat-test-${crate}`)) {
        for (const r of s.Resource) {
          const queue = Object.keys(queues).find((id) => r === `\${${id}.Arn}`);
          if (queue) rights[queue] = [...(rights[queue] ?? []), ...s.Action].sort();
        }
      }
      return rights;
    };
    const send = ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'];
    const consume = ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage'];
    expect(sqsRights('twilio-webhook')).toEqual({ [main(true)]: send });
    expect(sqsRights('notify')).toEqual({ [main(true)]: consume, [main(false)]: [...consume, ...send].sort(), [events]: send });
    expect(sqsRights('platform-api')).toEqual({ [main(false)]: send, [events]: send });
    for (const crate of ['create-chat-token', 'token-routes']) expect(sqsRights(crate)).toEqual({ [events]: send });
    expect(sqsRights('deliver-events')).toEqual({ [events]: [...consume, ...send].sort(), [eventsDead]: send });
    for (const crate of ['verify-token', 'enable-channel-notifications', 'verify-email']) {
      expect(sqsRights(crate)).toEqual({});
    }
  });
});

describe('storage and queues', () => {
  test('the notification table: pk/sk, on demand, TTL, point-in-time recovery, retained', () => {
    core.hasResource('AWS::DynamoDB::Table', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      },
    });
  });

  test('a test stack lets its table go with it', () => {
    const { core: throwaway } = synth({ testStack: 'true' });
    throwaway.hasResource('AWS::DynamoDB::Table', { DeletionPolicy: 'Delete' });
  });

  test('message events: FIFO without content de-dup, a FIFO dead-letter queue, and room for the notifier', () => {
    const queues = resources(core, 'AWS::SQS::Queue');
    const fifo = Object.values(queues).find((q) => q.Properties.FifoQueue && q.Properties.RedrivePolicy)!;
    expect(fifo.Properties.ContentBasedDeduplication).toBe(false);
    expect(fifo.Properties.RedrivePolicy.maxReceiveCount).toBe(5);
    const dlq = queues[fifo.Properties.RedrivePolicy.deadLetterTargetArn['Fn::GetAtt'][0]];
    expect(dlq.Properties.FifoQueue).toBe(true);
    const timeout = (crate: string) =>
      resources(core, 'AWS::Lambda::Function')[functionId(core, `chat-test-${crate}`)].Properties.Timeout;
    for (const [id, q] of Object.entries(queues).filter(([, q]) => q.Properties.RedrivePolicy)) {
      const consumer = id.startsWith('PlatformEvents') ? 'deliver-events' : 'notify';
      expect(q.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(6 * timeout(consumer));
    }
  });

  test('every queue is encrypted, refuses plain HTTP, and the three work queues have dead-letter queues', () => {
    const queues = resources(core, 'AWS::SQS::Queue');
    expect(Object.keys(queues)).toHaveLength(6);
    expect(Object.values(queues).filter((q) => q.Properties.RedrivePolicy)).toHaveLength(3);
    for (const q of Object.values(queues)) expect(q.Properties.SqsManagedSseEnabled).toBe(true);
    const policies = Object.values(resources(core, 'AWS::SQS::QueuePolicy'));
    const denied = policies.flatMap((p) =>
      p.Properties.PolicyDocument.Statement.filter(
        (s: any) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false',
      ).flatMap(() => p.Properties.Queues.map((q: any) => q.Ref)),
    );
    expect(denied.sort()).toEqual(Object.keys(queues).sort());
  });

  test('the notifier reads both its queues, the deliverer the events queue, in batches reporting partial failures', () => {
    const mappings = Object.values(resources(core, 'AWS::Lambda::EventSourceMapping'));
    expect(mappings).toHaveLength(3);
    const consumers = mappings.map((m) => m.Properties.FunctionName.Ref).sort();
    expect(consumers).toEqual(
      [functionId(core, 'chat-test-notify'), functionId(core, 'chat-test-notify'), functionId(core, 'chat-test-deliver-events')].sort(),
    );
    for (const m of mappings) {
      expect(m.Properties.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
      expect(m.Properties.BatchSize).toBe(10);
    }
  });
});

describe('HTTP API', () => {
  test("routes Twilio's webhook and the unsubscribe link to the webhook function, the token routes to theirs, and nothing else", () => {
    const integrations = resources(core, 'AWS::ApiGatewayV2::Integration');
    const routes = Object.values(resources(core, 'AWS::ApiGatewayV2::Route')).map((r) => {
      const integration = integrations[r.Properties.Target['Fn::Join'][1][1].Ref];
      expect(integration.Properties.PayloadFormatVersion).toBe('2.0');
      const target = render(integration.Properties.IntegrationUri).replace(/^\$\{(\w+)\.Arn\}$/, '$1');
      return [r.Properties.RouteKey, target];
    });
    const webhook = functionId(core, 'chat-test-twilio-webhook');
    const tokens = functionId(core, 'chat-test-token-routes');
    expect(routes.sort()).toEqual([
      ['GET /notifications/unsubscribe', webhook],
      ['GET /twilio-jwt', tokens],
      ['GET /virgil-jwt', tokens],
      ['POST /notifications/unsubscribe', webhook],
      ['POST /twilio/webhook/{secret}', webhook],
    ]);
    expect(Object.keys(integrations)).toHaveLength(2);
  });

  test('browsers may preflight the token routes with their bearer, and nothing more', () => {
    const [api] = Object.values(resources(core, 'AWS::ApiGatewayV2::Api'));
    expect(api.Properties.CorsConfiguration).toEqual({
      AllowOrigins: ['*'],
      AllowMethods: ['GET'],
      AllowHeaders: ['authorization'],
      MaxAge: 3600,
    });
    expect(api.Properties.CorsConfiguration.AllowCredentials).toBeUndefined();
  });

  test('the stage logs every request and is throttled', () => {
    core.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AccessLogSettings: { DestinationArn: Match.anyValue(), Format: Match.stringLikeRegexp('requestId') },
      DefaultRouteSettings: { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 },
    });
  });

  test("M2: Twilio's webhook has a throttle of its own, apart from the token routes, and the stage waits for its route", () => {
    const [[, stage]] = Object.entries(resources(core, 'AWS::ApiGatewayV2::Stage'));
    expect(stage.Properties.RouteSettings).toEqual({
      'POST /twilio/webhook/{secret}': { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
    const [webhookRoute] = Object.entries(resources(core, 'AWS::ApiGatewayV2::Route')).find(
      ([, r]) => r.Properties.RouteKey === 'POST /twilio/webhook/{secret}',
    )!;
    expect(stage.DependsOn).toEqual(expect.arrayContaining([webhookRoute]));
  });

  test('M2: the webhook and the notifier have reserved concurrency (a setting), the rest none', () => {
    const reserved = (template: typeof core) =>
      Object.fromEntries(
        Object.values(resources(template, 'AWS::Lambda::Function'))
          .filter((f) => f.Properties.ReservedConcurrentExecutions !== undefined)
          .map((f) => [f.Properties.FunctionName, f.Properties.ReservedConcurrentExecutions]),
      );
    expect(reserved(core)).toEqual({ 'chat-test-twilio-webhook': 10, 'chat-test-notify': 5 });
    const { core: tuned } = synth({ webhookConcurrency: '40', notifyConcurrency: '0' });
    expect(reserved(tuned)).toEqual({ 'chat-test-twilio-webhook': 40 });
    expect(() => synth({ webhookConcurrency: '-1' })).toThrow(/webhookConcurrency -1 must be a whole number/);
  });
});

describe('outputs', () => {
  test('apiUrl, apiKey and twilioWebhookReceiverURL, as the TypeScript integration had them, and the token routes', () => {
    const outputs = core.toJSON().Outputs;
    // CDK's own exports for the dev-extras stack (the table it records tokens in) aside.
    const named = (all: Record<string, unknown>) => Object.keys(all).filter((k) => !k.startsWith('ExportsOutput')).sort();
    // With a platform API, also the issuer its callers need tokens from.
    // And the chat widget's script (test/widget.test.ts).
    const widget = ['widgetLatestUrl', 'widgetScriptIntegrity', 'widgetScriptUrl'];
    expect(named(outputs)).toEqual(['apiKey', 'apiUrl', 'platformIssuer', 'tokenRoutesURL', 'twilioWebhookReceiverURL', ...widget]);
    expect(outputs.platformIssuer.Value).toBe(PLATFORM_ISSUER);
    const widgetOnly = synth({ platformIssuer: null }).core.toJSON().Outputs;
    expect(named(widgetOnly)).toEqual(['apiKey', 'apiUrl', 'tokenRoutesURL', 'twilioWebhookReceiverURL', ...widget]);
    expect(render(outputs.apiUrl.Value)).toMatch(/^\$\{Api\w+\.GraphQLUrl\}$/);
    expect(render(outputs.apiKey.Value)).toMatch(/^\$\{Api\w+ApiKey\w*\.ApiKey\}$/);
    expect(render(outputs.twilioWebhookReceiverURL.Value)).toMatch(/^\$\{WebhookApi\w+\.ApiEndpoint\}\/twilio\/webhook$/);
  });

  test('log retention follows the deployment', () => {
    const { core: short } = synth({ logRetentionDays: 14 });
    const groups = Object.values(resources(short, 'AWS::Logs::LogGroup'));
    expect(groups.length).toBeGreaterThanOrEqual(8);
    for (const g of groups) expect(g.Properties.RetentionInDays).toBe(14);
  });
});

describe('alarms', () => {
  test('a message in either dead-letter queue, or a work queue falling 30 minutes behind, alarms to a topic', () => {
    const queues = resources(core, 'AWS::SQS::Queue');
    const deadLetters = Object.keys(queues).filter((id) => !queues[id].Properties.RedrivePolicy);
    const work = Object.keys(queues).filter((id) => queues[id].Properties.RedrivePolicy);
    const alarms = Object.values(resources(core, 'AWS::CloudWatch::Alarm'));
    const [topic] = Object.keys(resources(core, 'AWS::SNS::Topic'));
    const watched = (metric: string) =>
      alarms
        .filter((a) => a.Properties.MetricName === metric)
        .map((a) => {
          expect(a.Properties.AlarmActions).toEqual([{ Ref: topic }]);
          expect(a.Properties.TreatMissingData).toBe('notBreaching');
          return [a.Properties.Dimensions[0].Value['Fn::GetAtt'][0], a.Properties.Threshold];
        })
        .sort();
    expect(watched('ApproximateNumberOfMessagesVisible')).toEqual(deadLetters.map((q) => [q, 1]).sort());
    expect(watched('ApproximateAgeOfOldestMessage')).toEqual(work.map((q) => [q, 1800]).sort());
    // And the seven service alarms below.
    expect(alarms).toHaveLength(13);
    expect(Object.keys(resources(core, 'AWS::SNS::Subscription'))).toEqual([]);
  });

  /** The metrics one alarm reads: name, statistic, dimensions as `Name=Value`. */
  const metricsOf = (alarm: Resource) =>
    (alarm.Properties.Metrics ?? [])
      .filter((m: any) => m.MetricStat)
      .map((m: any) => ({
        id: m.Id,
        name: m.MetricStat.Metric.MetricName,
        namespace: m.MetricStat.Metric.Namespace,
        stat: m.MetricStat.Stat,
        dimensions: m.MetricStat.Metric.Dimensions.map((d: any) => `${d.Name}=${d.Value}`).sort(),
      }));
  const serviceAlarms = () => {
    const [topic] = Object.keys(resources(core, 'AWS::SNS::Topic'));
    return Object.fromEntries(
      Object.entries(resources(core, 'AWS::CloudWatch::Alarm'))
        .filter(([, a]) => a.Properties.Metrics)
        .map(([id, a]) => {
          expect(a.Properties.AlarmActions).toEqual([{ Ref: topic }]);
          expect(a.Properties.OKActions).toEqual([{ Ref: topic }]);
          expect(a.Properties.TreatMissingData).toBe('notBreaching');
          return [id.replace(/^Operations/, '').replace(/[0-9A-F]{8}$/, ''), a];
        }),
    );
  };

  test('the functions\' own metrics alarm on internal errors, Twilio 429s and 5xx, refused webhooks, unqueued sweeps, access log gaps and a spent SMS budget', () => {
    const alarms = serviceAlarms();
    expect(Object.keys(alarms).sort()).toEqual([
      'AlarmsAccessLogFailures',
      'AlarmsInternalErrors',
      'AlarmsSmsBudgetSpent',
      'AlarmsSweepsUnscheduled',
      'AlarmsTwilioServerErrors',
      'AlarmsTwilioThrottled',
      'AlarmsWebhooksRefused',
    ]);
    for (const alarm of Object.values(alarms)) {
      for (const m of metricsOf(alarm)) {
        expect(m.namespace).toBe('ContextChat');
        expect(m.stat).toBe('Sum');
        // Summed over the stack's functions, never mixed with another stack's.
        expect(m.dimensions).toContain('Stack=chat-test');
        expect(m.dimensions.some((d: string) => d.startsWith('Function='))).toBe(false);
      }
    }
    // A rate, not a count: InternalError answers over requests, once there are 20 requests.
    const internal = alarms.AlarmsInternalErrors.Properties;
    expect(internal.Metrics.find((m: any) => m.Expression).Expression).toBe('IF(requests >= 20, 100 * internal / requests, 0)');
    expect(metricsOf(alarms.AlarmsInternalErrors)).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ id: 'internal', name: 'Errors', dimensions: ['ErrorType=InternalError', 'Stack=chat-test'] }),
        expect.objectContaining({ id: 'requests', name: 'Requests', dimensions: ['Stack=chat-test'] }),
      ]),
    );
    expect(internal).toMatchObject({ Threshold: 5, EvaluationPeriods: 2 });
    expect(metricsOf(alarms.AlarmsTwilioThrottled).map((m: any) => m.name)).toEqual(['TwilioThrottled']);
    expect(metricsOf(alarms.AlarmsTwilioServerErrors).map((m: any) => m.name)).toEqual(['TwilioServerErrors']);
    // One sweep not queued is one too many: a raced join may stand.
    expect(metricsOf(alarms.AlarmsSweepsUnscheduled).map((m: any) => m.name)).toEqual(['SweepsUnscheduled']);
    expect(alarms.AlarmsSweepsUnscheduled.Properties.Threshold).toBe(1);
    // One membership change missing from the access log is a gap in the audit (issue 34).
    expect(metricsOf(alarms.AlarmsAccessLogFailures).map((m: any) => m.name)).toEqual(['AccessLogFailures']);
    expect(alarms.AlarmsAccessLogFailures.Properties.Threshold).toBe(1);
    // The day's SMS budget spent (issue 30, M3): codes refused or texts held until midnight.
    expect(metricsOf(alarms.AlarmsSmsBudgetSpent).map((m: any) => m.name).sort()).toEqual(['SmsCodeBudgetReached', 'SmsTextBudgetReached']);
    expect(alarms.AlarmsSmsBudgetSpent.Properties.Threshold).toBe(1);
    expect(metricsOf(alarms.AlarmsWebhooksRefused).map((m: any) => m.dimensions)).toEqual([
      ['ErrorType=AccessDenied', 'Stack=chat-test'],
      ['ErrorType=BadRequest', 'Stack=chat-test'],
    ]);
    for (const alarm of Object.values(alarms)) {
      expect(alarm.Properties.AlarmDescription).toMatch(/^chat-test: /);
    }
  });

  test('the dashboard graphs every metric the functions write, per stack, and requests per deployed function', () => {
    const dashboards = Object.values(resources(core, 'AWS::CloudWatch::Dashboard'));
    expect(dashboards).toHaveLength(1);
    expect(dashboards[0].Properties.DashboardName).toBe('chat-test-operations');
    const body = JSON.parse(render(dashboards[0].Properties.DashboardBody).replace(/\$\{[^}]+\}/g, 'X'));
    const graphed = body.widgets.flatMap((w: any) => w.properties.metrics ?? []);
    // Each metric entry: [namespace, name, dimension name, value, ..., options].
    const names = new Set(graphed.map((m: any[]) => m[1]));
    // The names the Rust code writes (functions/context-chat/src/metrics.rs).
    const source = fs.readFileSync(path.join(__dirname, '..', '..', 'functions', 'context-chat', 'src', 'metrics.rs'), 'utf8');
    const counters = source.slice(source.indexOf('counters! {'), source.indexOf('}', source.indexOf('counters! {')));
    const written = [
      ...[...counters.matchAll(/^\s+(\w+), "/gm)].map((m) => m[1]),
      ...[...source.matchAll(/ErrorCounter::\w+ => "([A-Z]\w+)"/g)].map((m) => m[1]),
      'TwilioLatency',
    ];
    expect(written.length).toBeGreaterThan(20);
    for (const name of written) expect([name, names.has(name)]).toEqual([name, true]);
    // The notifications by channel: a SEARCH over the `Channel` dimension for each outcome the
    // Rust code names (metrics.rs, `Outcome::… => "Notifications…"`).
    const searches = body.widgets
      .flatMap((w: any) => w.properties.metrics ?? [])
      .map((m: any[]) => m.find((part: any) => typeof part === 'object' && part.expression)?.expression)
      .filter((e: string | undefined) => e?.startsWith('SEARCH('));
    const outcomes = [...source.matchAll(/Outcome::\w+ => "(Notifications\w+)"/g)].map((m) => m[1]);
    expect(outcomes).toHaveLength(6);
    for (const name of outcomes) {
      expect([name, searches.some((e: string) => e.includes(`MetricName="${name}"`) && e.includes('Channel') && e.includes('Stack="chat-test"'))]).toEqual([name, true]);
    }
    for (const m of graphed.filter((m: any[]) => typeof m[0] === 'string')) {
      expect(m[0]).toBe('ContextChat');
      expect(m.slice(2, -1)).toEqual(expect.arrayContaining(['Stack', 'chat-test']));
    }
    // RateLimited by each limit the Rust code names (metrics.rs, `Limit::… => "…"`).
    const limits = [...source.matchAll(/Limit::\w+ => "([a-z_]+)"/g)].map((m) => m[1]);
    expect(limits.length).toBeGreaterThan(4);
    expect(graphed
      .filter((m: any[]) => m[1] === 'RateLimited' && m.includes('Limit'))
      .map((m: any[]) => m[m.indexOf('Limit') + 1])
      .sort()).toEqual([...limits].sort());
    const perFunction = graphed
      .filter((m: any[]) => m[1] === 'Requests' && m.includes('Function'))
      .map((m: any[]) => m[m.indexOf('Function') + 1])
      .sort();
    expect(perFunction).toEqual([...CORE_FUNCTIONS].sort());
    expect(body.widgets[0].type).toBe('alarm');
    expect(body.widgets[0].properties.alarms).toHaveLength(13);
  });

  test('alarmEmail subscribes an address to the alarm topic', () => {
    const { core: watched } = synth({ alarmEmail: 'ops@example.org' });
    watched.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.org' });
  });
});

test('every environment variable the stacks set is one the Rust functions read', () => {
  const functionsDir = path.join(__dirname, '..', '..', 'functions');
  const rustSources = (dir: string): string[] =>
    fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) return e.name === 'tests' || e.name === 'target' ? [] : rustSources(p);
      return e.name.endsWith('.rs') ? [p] : [];
    });
  const literals = new Set(
    rustSources(functionsDir)
      .filter((f) => !f.includes(`${path.sep}test-support${path.sep}`))
      .flatMap((f) => [...fs.readFileSync(f, 'utf8').matchAll(/"([A-Z][A-Z0-9_]{2,})"/g)].map((m) => m[1])),
  );
  const { devExtras } = synth();
  const names = [core, devExtras].flatMap((t) =>
    Object.values(productFunctions(t)).flatMap((f) => Object.keys(f.Properties.Environment.Variables)),
  );
  expect(names.length).toBeGreaterThan(10);
  for (const name of new Set(names)) expect([name, literals.has(name)]).toEqual([name, true]);
});
