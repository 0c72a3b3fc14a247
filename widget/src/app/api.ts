/**
 * The widget's calls to Context Chat's GraphQL API (AppSync in the cloud, `chatctl serve`
 * locally): the operations of the API contract, with the API key in `x-api-key`. Errors carry
 * the contract's `errorType`, so the widget can act on what happened rather than on words.
 */

/** A refusal or failure, by the contract's `errorType`; `Network` when no answer came. */
export class ApiError extends Error {
  constructor(
    readonly type: string,
    message: string,
    /** For `TooManyRequests`: seconds until a retry may succeed. */
    readonly retryAfterSecs?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** What `issueChatToken` answers: a Twilio access token, its ledger id and its expiry. */
export interface ChatTokenReceipt {
  token: string;
  xid: string;
  /** Unix seconds. */
  expiresAt: number;
}

const ISSUE_CHAT_TOKEN = `mutation issueChatToken($deviceId: ID!, $token: ID!) {
  issueChatToken(deviceId: $deviceId, token: $token) { token xid expiresAt }
}`;
const VERIFY_TOKEN = `query verifyToken($token: ID!) {
  verifyToken(token: $token) { identity contexts roles { context role } }
}`;
const ENABLE_EMAIL = `mutation enableChannelNotifications($channel: ID!, $email: String!, $token: ID!) {
  enableChannelNotifications(channel: $channel, email: $email, token: $token) { emailVerified }
}`;
const VERIFY_EMAIL = `mutation verifyEmail($email: String!, $code: String!, $token: ID) {
  verifyEmail(email: $email, code: $code, token: $token)
}`;
const ENABLE_SMS = `mutation enableChannelSmsNotifications($channel: ID!, $phone: String!, $token: ID!) {
  enableChannelSmsNotifications(channel: $channel, phone: $phone, token: $token) { phoneVerified }
}`;
const VERIFY_PHONE = `mutation verifyPhone($phone: String!, $code: String!, $token: ID!) {
  verifyPhone(phone: $phone, code: $code, token: $token)
}`;

/** "… Try again in 42 s." → 42: the API says when in its message (and HTTP's Retry-After). */
function retryAfter(message: string, header: string | null): number | undefined {
  const said = /try again in (\d+) s/i.exec(message)?.[1] ?? header;
  const secs = said == null ? NaN : Number(said);
  return Number.isFinite(secs) && secs >= 0 ? secs : undefined;
}

export class Api {
  constructor(
    private readonly url: string,
    private readonly apiKey: string | null,
  ) {}

  private async call<T>(query: string, variables: Record<string, unknown>): Promise<T> {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (this.apiKey) headers['x-api-key'] = this.apiKey;
    let response: Response;
    try {
      response = await fetch(this.url, {
        method: 'POST',
        headers,
        body: JSON.stringify({ query, variables }),
        credentials: 'omit',
      });
    } catch {
      throw new ApiError('Network', 'The chat service cannot be reached.');
    }
    let body: { data?: Record<string, unknown>; errors?: { errorType?: string; message?: string }[] };
    try {
      body = await response.json();
    } catch {
      throw new ApiError(response.status >= 500 ? 'InternalError' : 'Network', `HTTP ${response.status}`);
    }
    const error = body.errors?.[0];
    if (error) {
      const message = error.message ?? '';
      const type =
        error.errorType ?? (response.status === 401 || response.status === 403 ? 'Unauthorized' : 'InternalError');
      throw new ApiError(type, message, retryAfter(message, response.headers.get('retry-after')));
    }
    const field = Object.values(body.data ?? {})[0];
    if (field === undefined) throw new ApiError('InternalError', `HTTP ${response.status}`);
    return field as T;
  }

  /** Each context's role (`reader`, `member`, `moderator`) in the token. */
  async roles(token: string): Promise<Map<string, string>> {
    const info = await this.call<{ roles?: { context: string; role: string }[] | null }>(VERIFY_TOKEN, { token });
    return new Map((info.roles ?? []).map((r) => [r.context, r.role]));
  }

  issueChatToken(deviceId: string, token: string): Promise<ChatTokenReceipt> {
    return this.call(ISSUE_CHAT_TOKEN, { deviceId, token });
  }

  async enableEmail(channel: string, email: string, token: string): Promise<boolean> {
    const r = await this.call<{ emailVerified: boolean }>(ENABLE_EMAIL, { channel, email, token });
    return r.emailVerified;
  }

  async verifyEmail(email: string, code: string, token: string): Promise<boolean> {
    return (await this.call<boolean | null>(VERIFY_EMAIL, { email, code, token })) === true;
  }

  async enableSms(channel: string, phone: string, token: string): Promise<boolean> {
    const r = await this.call<{ phoneVerified: boolean }>(ENABLE_SMS, { channel, phone, token });
    return r.phoneVerified;
  }

  async verifyPhone(phone: string, code: string, token: string): Promise<boolean> {
    return (await this.call<boolean>(VERIFY_PHONE, { phone, code, token })) === true;
  }
}
