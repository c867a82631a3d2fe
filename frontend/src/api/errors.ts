// Turns any failure from the API client into one clear, human message.
import { isAxiosError } from 'axios'

export type ProblemKind =
  | 'network'
  | 'unauthorized'
  | 'too_large'
  | 'invalid'
  | 'rate_limited'
  | 'server'
  | 'not_found'
  | 'conflict'
  | 'unknown'

export interface ApiProblem {
  kind: ProblemKind
  status?: number
  /** Short headline, e.g. "Invalid request". */
  title: string
  /** One sentence the user can act on. */
  message: string
  /** Dotted request field named by a 413/422 (`code`, `limits.timeout_seconds`, `files.0.path`). */
  field?: string
  /** The input file a 413/422 names (its index in the request's `files`). */
  fileIndex?: number
  retryAfterSeconds?: number
  /** Worth retrying the same request later (connection loss, 429, 5xx). */
  retryable: boolean
}

interface ValidationItem {
  loc?: (string | number)[]
  msg?: string
}

const FIELD_LABELS: Record<string, string> = {
  code: 'Code',
  stdin: 'stdin',
  limits: 'Limits',
  'limits.timeout_seconds': 'Timeout',
  'limits.memory_mb': 'Memory',
  runtime: 'Runtime',
  files: 'Input files',
}

export function fieldLabel(field: string): string {
  return FIELD_LABELS[field] ?? (isFileField(field) ? 'Input files' : field)
}

/** `files`, or a field of one input file (`files.0.path`): shown next to the files rather than the code. */
export function isFileField(field: string | undefined): boolean {
  return field === 'files' || (field?.startsWith('files.') ?? false)
}

function fileIndexOf(field: string | undefined): number | undefined {
  const match = /^files\.(\d+)(\.|$)/.exec(field ?? '')
  return match ? Number(match[1]) : undefined
}

/** The server's messages about a file name it ("file 'data.csv': ..."); pydantic's own do not. */
function aboutFile(index: number, field: string | undefined, msg: string | undefined): string {
  if (msg?.startsWith('file ')) return msg
  return `Input file ${index + 1} (${field ?? 'files'}): ${msg ?? 'invalid value'}`
}

function firstValidationItem(detail: unknown): { field?: string; msg?: string } {
  if (!Array.isArray(detail) || detail.length === 0) return {}
  const item = detail[0] as ValidationItem
  const loc = (item.loc ?? []).filter((part, i) => !(i === 0 && ['body', 'query', 'path'].includes(String(part))))
  return { field: loc.length ? loc.join('.') : undefined, msg: item.msg }
}

function detailText(detail: unknown): string | undefined {
  if (typeof detail === 'string' && detail.trim()) return detail.trim()
  return undefined
}

function parseRetryAfter(value: unknown): number | undefined {
  if (value == null) return undefined
  const seconds = Number(value)
  if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds)
  if (typeof value !== 'string') return undefined // Axios gives header values as strings
  const date = Date.parse(value)
  if (!Number.isNaN(date)) return Math.max(0, Math.ceil((date - Date.now()) / 1000))
  return undefined
}

function retryHint(seconds: number | undefined): string {
  if (seconds === undefined) return 'Try again in a moment.'
  return seconds <= 1 ? 'Try again in a second.' : `Try again in ${seconds} s.`
}

export function describeError(error: unknown): ApiProblem {
  if (!isAxiosError(error)) {
    return {
      kind: 'unknown',
      title: 'Something went wrong',
      message: error instanceof Error ? error.message : String(error),
      retryable: false,
    }
  }
  const response = error.response
  if (!response) {
    return {
      kind: 'network',
      title: 'Connection lost',
      message:
        error.code === 'ECONNABORTED' || error.code === 'ETIMEDOUT'
          ? 'The API did not answer in time. Check that the server is running.'
          : 'Cannot reach the API. Check your connection and that the server is running.',
      retryable: true,
    }
  }
  const status = response.status
  const body = (response.data ?? {}) as { detail?: unknown }
  const detail = detailText(body.detail)
  const retryAfterSeconds = parseRetryAfter(response.headers?.['retry-after'])

  if (status === 401 || status === 403) {
    return {
      kind: 'unauthorized',
      status,
      title: status === 401 ? 'API key required' : 'Not allowed',
      message:
        status === 401
          ? 'This server needs a valid API key. Enter it in the "API key" field and run again.'
          : (detail ?? 'This API key may not do that.'),
      retryable: false,
    }
  }
  if (status === 413) {
    const { field, msg } = firstValidationItem(body.detail)
    const fileIndex = fileIndexOf(field)
    let message: string
    // The server's message names the file ("file 'big.csv': larger than 1000000 bytes").
    if (fileIndex !== undefined) message = `${aboutFile(fileIndex, field, msg)}. Remove it or pick a smaller file.`
    else if (field) message = `${fieldLabel(field)} is too large${msg ? `: ${msg}` : ''}. Shorten it and run again.`
    else message = `The request is too large${msg || detail ? `: ${msg ?? detail}` : ''}. Shorten the code or stdin, or send smaller files, and run again.`
    return { kind: 'too_large', status, title: 'Too large', field, fileIndex, message, retryable: false }
  }
  if (status === 422) {
    const { field, msg } = firstValidationItem(body.detail)
    const fileIndex = fileIndexOf(field)
    return {
      kind: 'invalid',
      status,
      title: 'Invalid request',
      field,
      fileIndex,
      message: fileIndex !== undefined
        ? aboutFile(fileIndex, field, msg)
        : field
        ? `${fieldLabel(field)} (${field}): ${msg ?? 'invalid value'}`
        : (detail ?? msg ?? 'The server rejected the request.'),
      retryable: false,
    }
  }
  if (status === 429) {
    return {
      kind: 'rate_limited',
      status,
      title: 'Too many requests',
      message: `You are sending executions faster than the server allows. ${retryHint(retryAfterSeconds)}`,
      retryAfterSeconds,
      retryable: true,
    }
  }
  if (status === 404) {
    return { kind: 'not_found', status, title: 'Not found', message: detail ?? 'That execution no longer exists.', retryable: false }
  }
  if (status === 409) {
    return { kind: 'conflict', status, title: 'Already finished', message: detail ?? 'The execution had already finished.', retryable: false }
  }
  if (status >= 500) {
    return {
      kind: 'server',
      status,
      title: status === 503 ? 'Service unavailable' : 'Server error',
      message: `The server could not handle the request (HTTP ${status}${detail ? `: ${detail}` : ''}). ${retryHint(retryAfterSeconds)}`,
      retryAfterSeconds,
      retryable: true,
    }
  }
  return {
    kind: 'unknown',
    status,
    title: `Unexpected response (HTTP ${status})`,
    message: detail ?? 'The server answered in a way this page does not understand.',
    retryable: false,
  }
}
