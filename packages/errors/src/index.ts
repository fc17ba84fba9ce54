/**
 * The one error family of hsmpool. Every boundary (CLI, gRPC, files, certificates,
 * quotes, sealed blobs) turns bad input into an HsmPoolError with a stable `code`
 * that programs branch on and a `message` a person can act on.
 */

/** gRPC status numbers (kept here so this package needs no gRPC dependency). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
} as const;

/** Error codes, each with the gRPC status it maps to and the REST status (the Azure REST endpoint's). */
export const ErrorCodes = {
  BadParameter: { grpc: GrpcStatus.INVALID_ARGUMENT, http: 400 },
  KeyNotFound: { grpc: GrpcStatus.NOT_FOUND, http: 404 },
  NotFound: { grpc: GrpcStatus.NOT_FOUND, http: 404 },
  Conflict: { grpc: GrpcStatus.ALREADY_EXISTS, http: 409 },
  Forbidden: { grpc: GrpcStatus.PERMISSION_DENIED, http: 403 },
  OperationNotAllowed: { grpc: GrpcStatus.PERMISSION_DENIED, http: 403 },
  Unauthenticated: { grpc: GrpcStatus.UNAUTHENTICATED, http: 401 },
  AttestationFailed: { grpc: GrpcStatus.UNAUTHENTICATED, http: 401 },
  LaunchRefused: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 400 },
  IntegrityError: { grpc: GrpcStatus.DATA_LOSS, http: 500 },
  NotInitialized: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409 },
  /** The pool is provisioned (or recovering) and not activated: download (or upload) the security domain first. */
  NotActivated: { grpc: GrpcStatus.FAILED_PRECONDITION, http: 409 },
  OwnershipPending: { grpc: GrpcStatus.UNAVAILABLE, http: 503 },
  NotLeader: { grpc: GrpcStatus.UNAVAILABLE, http: 503 },
  NoQuorum: { grpc: GrpcStatus.UNAVAILABLE, http: 503 },
  ServiceUnavailable: { grpc: GrpcStatus.UNAVAILABLE, http: 503 },
  DeviceFault: { grpc: GrpcStatus.UNAVAILABLE, http: 503 },
  Timeout: { grpc: GrpcStatus.DEADLINE_EXCEEDED, http: 504 },
  /** An operation of the real API this pool does not offer (yet): refused, never answered wrongly. */
  NotImplemented: { grpc: GrpcStatus.UNIMPLEMENTED, http: 501 },
  Internal: { grpc: GrpcStatus.INTERNAL, http: 500 },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class HsmPoolError extends Error {
  override readonly name = "HsmPoolError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Readonly<Record<string, unknown>>,
  ) {
    super(message);
  }

  get grpcStatus(): number {
    return ErrorCodes[this.code].grpc;
  }

  get httpStatus(): number {
    return ErrorCodes[this.code].http;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Readonly<Record<string, unknown>> } {
    return this.details
      ? { code: this.code, message: this.message, details: this.details }
      : { code: this.code, message: this.message };
  }
}

export function isHsmPoolError(e: unknown, code?: ErrorCode): e is HsmPoolError {
  return e instanceof HsmPoolError && (code === undefined || e.code === code);
}

export function isErrorCode(s: string): s is ErrorCode {
  return Object.hasOwn(ErrorCodes, s);
}

/** Shorthand for `throw new HsmPoolError(...)` in expression position. */
export function fail(code: ErrorCode, message: string, details?: Record<string, unknown>): never {
  throw new HsmPoolError(code, message, details);
}
