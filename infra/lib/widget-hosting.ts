import { CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as s3deploy from 'aws-cdk-lib/aws-s3-deployment';
import { Construct } from 'constructs';
import * as fs from 'fs';
import * as path from 'path';
import { acceptFinding } from './nag';

/** The files of a widget build (`widget/dist`, `npm run build`) that the cloud serves. */
export const WIDGET_FILES = ['context-chat.js', 'context-chat-app.js', 'context-chat-twilio.js', 'manifest.json'];

/** What `widget/dist/manifest.json` says of a build. */
export interface WidgetManifest {
  version: string;
  loader: { file: string; integrity: string };
}

/** A widget build, checked: every file there, and a manifest that names a version and the loader's hash. */
export function readWidgetBuild(dir: string): WidgetManifest {
  const missing = WIDGET_FILES.filter((f) => !fs.existsSync(path.join(dir, f)));
  if (missing.length > 0) {
    throw new Error(
      `The chat widget's build in ${dir} lacks ${missing.join(', ')}: run (cd widget && npm ci && npm run build), ` +
        'or deploy without it (-c widget=false).',
    );
  }
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as WidgetManifest;
  if (!/^\d+\.\d+\.\d+([-+][\w.-]+)?$/.test(String(manifest.version)) || !/^sha384-[A-Za-z0-9+/=]{64}$/.test(String(manifest.loader?.integrity))) {
    throw new Error(`${dir}/manifest.json names no version and loader integrity: rebuild the widget.`);
  }
  return manifest;
}

/** A short life for `latest/`: a page that follows it gets a new version within minutes. */
export const LATEST_MAX_AGE = Duration.minutes(5);

export interface WidgetHostingProps {
  /** The built widget (`widget/dist`). */
  readonly dir: string;
  /** A throwaway stack: its buckets go with it. */
  readonly testStack: boolean;
  /** Days the access logs are kept. */
  readonly logRetentionDays: number;
}

/**
 * The chat widget for platforms' pages: a private S3 bucket that only CloudFront reads (origin
 * access control), HTTPS only, each version under `widget/VERSION/` cached for good and
 * `widget/latest/` for five minutes. The stack outputs the script's URL and its Subresource
 * Integrity hash, which a page puts in its script tag.
 */
export class WidgetHosting extends Construct {
  readonly distribution: cloudfront.Distribution;
  readonly bucket: s3.Bucket;
  readonly manifest: WidgetManifest;

  constructor(scope: Construct, id: string, props: WidgetHostingProps) {
    super(scope, id);
    this.manifest = readWidgetBuild(props.dir);
    const version = this.manifest.version;
    const removal = props.testStack
      ? { removalPolicy: RemovalPolicy.DESTROY, autoDeleteObjects: true }
      : { removalPolicy: RemovalPolicy.RETAIN };

    const logs = new s3.Bucket(this, 'Logs', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      lifecycleRules: [{ expiration: Duration.days(props.logRetentionDays) }],
      ...removal,
    });
    acceptFinding(logs, 'S1', 'This bucket holds the access logs of the widget bucket; it does not log into itself.');

    this.bucket = new s3.Bucket(this, 'Files', {
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.S3_MANAGED,
      enforceSSL: true,
      serverAccessLogsBucket: logs,
      serverAccessLogsPrefix: 'bucket/',
      ...removal,
    });

    // Scripts loaded with integrity= are fetched with CORS: any page may load them, without credentials.
    const headers = new cloudfront.ResponseHeadersPolicy(this, 'Headers', {
      corsBehavior: {
        accessControlAllowOrigins: ['*'],
        accessControlAllowMethods: ['GET', 'HEAD'],
        accessControlAllowHeaders: ['*'],
        accessControlAllowCredentials: false,
        originOverride: true,
      },
      securityHeadersBehavior: {
        contentTypeOptions: { override: true },
        strictTransportSecurity: { accessControlMaxAge: Duration.days(365), includeSubdomains: true, override: true },
        referrerPolicy: { referrerPolicy: cloudfront.HeadersReferrerPolicy.NO_REFERRER, override: true },
      },
    });
    this.distribution = new cloudfront.Distribution(this, 'Cdn', {
      comment: `${Stack.of(this).stackName}: the chat widget`,
      defaultBehavior: {
        origin: origins.S3BucketOrigin.withOriginAccessControl(this.bucket),
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
        // Each object's own Cache-Control decides (a year for a version, minutes for latest).
        cachePolicy: cloudfront.CachePolicy.CACHING_OPTIMIZED,
        responseHeadersPolicy: headers,
        compress: true,
      },
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: cloudfront.PriceClass.PRICE_CLASS_ALL,
    });
    acceptFinding(
      this.distribution,
      'CFR3',
      "CloudFront's standard logs need object ACLs on their bucket (legacy, and cfn-lint's W3045): the scripts are public " +
        'and cached, every fetch from the bucket is in its access log, and what users do is logged by the API (AppSync).',
    );
    acceptFinding(this.distribution, 'CFR1', 'The widget serves a platform\'s users wherever they are; the platform decides who may chat.');
    acceptFinding(
      this.distribution,
      'CFR2',
      'Static, public, cached scripts of a few hundred KB: the API they call (AppSync, rate-limited per identity) is where requests cost.',
    );
    acceptFinding(
      this.distribution,
      'CFR4',
      'The default *.cloudfront.net certificate cannot pin TLS 1.2 (CloudFront fixes its policy); a deployment with a domain of its own would add its certificate and TLSv1.2_2021.',
    );

    const files = s3deploy.Source.asset(props.dir, { exclude: ['*', ...WIDGET_FILES.flatMap((f) => [`!${f}`, `!${f}.map`, `!${f}.LEGAL.txt`])] });
    // A version's files never change: pages pin them by integrity. Older versions stay (no pruning).
    const versioned = new s3deploy.BucketDeployment(this, 'Version', {
      sources: [files],
      destinationBucket: this.bucket,
      destinationKeyPrefix: `widget/${version}/`,
      prune: false,
      cacheControl: [s3deploy.CacheControl.setPublic(), s3deploy.CacheControl.maxAge(Duration.days(365)), s3deploy.CacheControl.immutable()],
    });
    const latest = new s3deploy.BucketDeployment(this, 'Latest', {
      sources: [files],
      destinationBucket: this.bucket,
      destinationKeyPrefix: 'widget/latest/',
      prune: true,
      cacheControl: [s3deploy.CacheControl.setPublic(), s3deploy.CacheControl.maxAge(LATEST_MAX_AGE)],
      distribution: this.distribution,
      distributionPaths: ['/widget/latest/*'],
    });
    latest.node.addDependency(versioned);
    // CDK's upload function (one per stack, beside this construct) is CDK's to keep current;
    // what it may do, CDK grants: read the asset bucket, write this one, invalidate the cache.
    const filesId = Stack.of(this).getLogicalId(this.bucket.node.defaultChild as s3.CfnBucket);
    for (const child of Stack.of(this).node.children) {
      if (!child.node.id.startsWith('Custom::CDKBucketDeployment')) continue;
      acceptFinding(
        child,
        'IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        "CDK's BucketDeployment (the widget upload) logs with AWS's basic execution policy.",
      );
      acceptFinding(child, 'L1', "CDK's BucketDeployment pins its own Lambda runtime; a CDK upgrade moves it.");
      for (const wildcard of [
        'Action::s3:Abort*',
        'Action::s3:DeleteObject*',
        'Action::s3:GetBucket*',
        'Action::s3:GetObject*',
        'Action::s3:List*',
        `Resource::<${filesId}.Arn>/*`,
        'Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-<AWS::Region>/*',
        'Resource::*',
      ]) {
        acceptFinding(
          child,
          `IAM5[${wildcard}]`,
          "CDK's BucketDeployment grant: copy the widget's files from the CDK asset bucket into the widget " +
            'bucket (objects by prefix), and invalidate the CloudFront cache (CloudFront names no resource for that).',
        );
      }
    }

    const base = `https://${this.distribution.distributionDomainName}/widget`;
    new CfnOutput(Stack.of(this), 'widgetScriptUrl', {
      value: `${base}/${version}/context-chat.js`,
      description: "The chat widget's loader, this version (cached for good): <script src=… integrity=widgetScriptIntegrity crossorigin=anonymous>",
    });
    new CfnOutput(Stack.of(this), 'widgetScriptIntegrity', {
      value: this.manifest.loader.integrity,
      description: 'The Subresource Integrity hash of widgetScriptUrl',
    });
    new CfnOutput(Stack.of(this), 'widgetLatestUrl', {
      value: `${base}/latest/context-chat.js`,
      description: 'The newest widget (5-minute cache); without integrity=, as it changes',
    });
  }
}
