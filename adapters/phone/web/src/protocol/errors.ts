/** Typed errors: every refusal of the library is a KeysteadError with a stable `code`. */

export class KeysteadError extends Error {
  code: string;
  hint?: string;
  constructor(code: string, message: string, hint?: string) {
    super(message);
    this.name = 'KeysteadError';
    this.code = code;
    if (hint !== undefined) this.hint = hint;
  }
}

/** The chain shows this device removed, or the service refuses it as removed (403 device_removed). */
export class DeviceRemoved extends KeysteadError {
  constructor(message = 'this device has been removed from the account') {
    super('device_removed', message, 'ask an admin to approve this phone again');
    this.name = 'DeviceRemoved';
  }
}

/** The passphrase does not open the keystore (or the keystore was modified: same error). */
export class WrongPassphrase extends KeysteadError {
  constructor() {
    super('wrong_passphrase', 'wrong passphrase (or a modified keystore)');
    this.name = 'WrongPassphrase';
  }
}

/** A signature, chain, proof, cfrag or prompt that does not verify. */
export class VerificationFailed extends KeysteadError {
  constructor(message: string) {
    super('verification_failed', message);
    this.name = 'VerificationFailed';
  }
}

/** Bytes that are not in the documented format. */
export class FormatError extends KeysteadError {
  constructor(message: string) {
    super('format', message);
    this.name = 'FormatError';
  }
}

/** A version this library does not read. */
export class UnsupportedVersion extends KeysteadError {
  constructor(message: string) {
    super('unsupported_version', message);
    this.name = 'UnsupportedVersion';
  }
}

/** The service served a chain shorter than, or forking from, the newest one seen. */
export class RollbackDetected extends VerificationFailed {
  constructor(message: string) {
    super(message);
    this.code = 'rollback_detected';
    this.name = 'RollbackDetected';
  }
}

/** A 4xx/5xx answer of the service (`{"error", "message"}`), or no answer at all. */
export class ServiceError extends KeysteadError {
  status: number;
  constructor(status: number, code: string, message: string) {
    super(code, message);
    this.name = 'ServiceError';
    this.status = status;
  }
}
