import type { Socket } from 'node:net';
import type { ConnectionError } from 'fastify';
import { requestId } from '../core/ids.js';
import type { Problem } from './problem.js';

/**
 * Requests that Node's HTTP parser refuses before Fastify sees them: a request head (request
 * line and headers) over `--max-http-header-size` (16 KiB by default), a malformed request
 * line or header, a head or body that takes longer than the server's request timeout. Node
 * and Fastify answered them in bare text or Fastify's own JSON; here they get problem+json
 * like every other error, and are counted (`agentstore_http_parser_refused_total`).
 *
 * There is no request, so no route, URL or request id from a client: `instance` names the
 * occurrence by a fresh request id, which the log line carries too.
 */
export interface RefusedRequest {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
}

export function classifyClientError(error: ConnectionError): RefusedRequest {
  switch (error.code) {
    case 'HPE_HEADER_OVERFLOW':
      // llhttp counts the request line against the same limit, so a long URL lands here too.
      return { status: 431, code: 'agentstore.payload_too_large', title: 'Request Header Fields Too Large', detail: 'the request line and headers are larger than the server accepts (16 KiB)' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
    case 'ERR_HTTP_HEADERS_TIMEOUT':
      return { status: 408, code: 'agentstore.request_timeout', title: 'Request Timeout', detail: 'the request did not arrive in time' };
    default:
      return { status: 400, code: 'agentstore.validation', title: 'Bad Request', detail: 'the request is not well-formed HTTP/1.1' };
  }
}

export interface ClientErrorDeps {
  readonly log: { debug(obj: object, msg: string): void };
  /** Counts one refused request by status. */
  readonly refused: (status: number) => void;
}

/** A Fastify `clientErrorHandler` answering with problem+json. */
export function createClientErrorHandler(deps: () => ClientErrorDeps | undefined): (error: ConnectionError, socket: Socket) => void {
  return (error, socket) => {
    // A reset connection has no one to answer; it is not a refused request either.
    if (error.code === 'ECONNRESET' || socket.destroyed) return;
    const refused = classifyClientError(error);
    const id = requestId();
    const problem: Problem = {
      type: `urn:agentstore:problem:${refused.code.replace(/^agentstore\./, '')}`,
      title: refused.title,
      status: refused.status,
      detail: refused.detail,
      instance: `urn:agentstore:request:${id}`,
      code: refused.code,
      requestId: id,
    };
    const current = deps();
    current?.refused(refused.status);
    current?.log.debug({ err: error, requestId: id, status: refused.status }, 'request refused by the HTTP parser');
    // As Node's own handler: only while no response of this connection has begun (a
    // pipelined request behind one in progress would otherwise interleave two responses).
    const inProgress = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (socket.writable && !inProgress?.headersSent) {
      const body = JSON.stringify(problem);
      socket.write(
        `HTTP/1.1 ${refused.status} ${refused.title}\r\nContent-Type: application/problem+json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
          `X-Request-Id: ${id}\r\nConnection: close\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  };
}
