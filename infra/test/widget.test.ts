import { Template } from 'aws-cdk-lib/assertions';
import * as fs from 'fs';
import * as path from 'path';
import { buildApp } from '../lib/app';
import { placeholderLambdaDir, placeholderWidgetDir, render, resources, synth, testApp } from './support';

const { core } = synth();

describe('the chat widget on S3 behind CloudFront', () => {
  test('the bucket is private: no public access, encrypted, TLS only, read by CloudFront alone', () => {
    const buckets = Object.entries(resources(core, 'AWS::S3::Bucket'));
    const [filesId, files] = buckets.find(([id]) => id.startsWith('WidgetFiles'))!;
    expect(files.Properties.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });
    expect(files.Properties.BucketEncryption.ServerSideEncryptionConfiguration[0].ServerSideEncryptionByDefault.SSEAlgorithm).toBe('AES256');
    expect(files.Properties.LoggingConfiguration.DestinationBucketName.Ref).toMatch(/^WidgetLogs/);
    // No legacy ACLs anywhere: logs are delivered under a bucket policy.
    for (const [, bucket] of buckets) expect(bucket.Properties.AccessControl).toBeUndefined();
    const policy = Object.values(resources(core, 'AWS::S3::BucketPolicy')).find((p) => p.Properties.Bucket.Ref === filesId)!;
    const statements = policy.Properties.PolicyDocument.Statement;
    const allows = statements.filter((s: any) => s.Effect === 'Allow');
    expect(allows).toHaveLength(1);
    expect(allows[0].Principal).toEqual({ Service: 'cloudfront.amazonaws.com' });
    expect([allows[0].Action].flat()).toEqual(['s3:GetObject']);
    expect(render(allows[0].Condition.StringEquals['AWS:SourceArn'])).toMatch(/:distribution\/\$\{WidgetCdn/);
    expect(statements.some((s: any) => s.Effect === 'Deny' && s.Condition?.Bool?.['aws:SecureTransport'] === 'false')).toBe(true);
  });

  test('CloudFront serves it over HTTPS only, through origin access control, with CORS for integrity checks', () => {
    const [dist] = Object.values(resources(core, 'AWS::CloudFront::Distribution'));
    const config = dist.Properties.DistributionConfig;
    expect(config.DefaultCacheBehavior.ViewerProtocolPolicy).toBe('https-only');
    expect(config.DefaultCacheBehavior.AllowedMethods).toEqual(['GET', 'HEAD']);
    expect(config.Origins[0].OriginAccessControlId).toBeDefined();
    expect(config.Origins[0].S3OriginConfig.OriginAccessIdentity).toBe('');
    const [oac] = Object.values(resources(core, 'AWS::CloudFront::OriginAccessControl'));
    expect(oac.Properties.OriginAccessControlConfig).toMatchObject({ OriginAccessControlOriginType: 's3', SigningBehavior: 'always' });
    const [headers] = Object.values(resources(core, 'AWS::CloudFront::ResponseHeadersPolicy'));
    const cors = headers.Properties.ResponseHeadersPolicyConfig.CorsConfig;
    expect(cors.AccessControlAllowOrigins.Items).toEqual(['*']);
    expect(cors.AccessControlAllowCredentials).toBe(false);
  });

  test('a version is cached for a year and kept; latest for five minutes, invalidated on deploy', () => {
    const uploads = Object.values(resources(core, 'Custom::CDKBucketDeployment')).map((u) => u.Properties);
    const byPrefix = Object.fromEntries(uploads.map((u) => [u.DestinationBucketKeyPrefix, u]));
    expect(Object.keys(byPrefix).sort()).toEqual(['widget/1.2.3/', 'widget/latest/']);
    expect(byPrefix['widget/1.2.3/'].SystemMetadata['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(byPrefix['widget/1.2.3/'].Prune).toBe(false);
    expect(byPrefix['widget/latest/'].SystemMetadata['cache-control']).toBe('public, max-age=300');
    expect(byPrefix['widget/latest/'].DistributionPaths).toEqual(['/widget/latest/*']);
  });

  test("the stack outputs the script's URL and its Subresource Integrity hash from the build", () => {
    const outputs = core.findOutputs('*');
    expect(render(outputs.widgetScriptUrl.Value)).toMatch(/^https:\/\/\$\{WidgetCdn\w+\.DomainName\}\/widget\/1\.2\.3\/context-chat\.js$/);
    expect(outputs.widgetScriptIntegrity.Value).toBe(`sha384-${'A'.repeat(64)}`);
    expect(render(outputs.widgetLatestUrl.Value)).toMatch(/\/widget\/latest\/context-chat\.js$/);
  });

  test('widget=false leaves it out', () => {
    const { core: without } = synth({ widget: false });
    expect(Object.keys(resources(without, 'AWS::CloudFront::Distribution'))).toHaveLength(0);
    expect(Object.keys(resources(without, 'AWS::S3::Bucket'))).toHaveLength(0);
    expect(Object.keys(without.findOutputs('widget*'))).toHaveLength(0);
  });

  test('a missing build says how to make it', () => {
    const empty = placeholderWidgetDir();
    fs.rmSync(path.join(empty, 'context-chat-twilio.js'));
    const app = testApp({ stackName: 'chat-test', lambdaDir: placeholderLambdaDir(), widgetDir: empty });
    expect(() => buildApp(app)).toThrow(/lacks context-chat-twilio.js: run \(cd widget && npm ci && npm run build\), or deploy without it \(-c widget=false\)/);
  });

  test('the real build, when there is one, synthesizes with its own version and hash', () => {
    const dist = path.join(__dirname, '..', '..', 'widget', 'dist');
    if (!fs.existsSync(path.join(dist, 'context-chat-twilio.js'))) return; // scripts/test builds it later; cdk synth uses it
    const manifest = JSON.parse(fs.readFileSync(path.join(dist, 'manifest.json'), 'utf8'));
    const app = testApp({ stackName: 'chat-test', lambdaDir: placeholderLambdaDir(), widgetDir: dist });
    const template = Template.fromStack(buildApp(app).core);
    expect(template.findOutputs('widgetScriptIntegrity').widgetScriptIntegrity.Value).toBe(manifest.loader.integrity);
  });
});
