import { describe, expect, it } from 'vitest'
import { httpError } from '../test/fakes'
import { describeError } from './errors'

describe('describeError', () => {
  it('names the field of a 422', () => {
    const problem = describeError(
      httpError(422, { detail: [{ loc: ['body', 'limits', 'timeout_seconds'], msg: 'Input should be less than or equal to 30', type: 'less_than_equal' }] }),
    )
    expect(problem.kind).toBe('invalid')
    expect(problem.field).toBe('limits.timeout_seconds')
    expect(problem.message).toContain('limits.timeout_seconds')
    expect(problem.message).toContain('less than or equal to 30')
  })

  it('names the field of a 413', () => {
    const problem = describeError(httpError(413, { detail: [{ loc: ['body', 'code'], msg: 'code exceeds 65536 bytes', type: 'too_large' }] }))
    expect(problem).toMatchObject({ kind: 'too_large', field: 'code', retryable: false })
    expect(problem.message).toMatch(/^Code is too large/)
  })

  it('handles a 413 without a field (whole body, or a proxy limit)', () => {
    expect(describeError(httpError(413, 'Request Entity Too Large')).message).toMatch(/request is too large/)
    const body = describeError(httpError(413, { detail: [{ loc: ['body'], msg: 'the request body is larger than 100 bytes', type: 'too_large' }] }))
    expect(body.field).toBeUndefined()
    expect(body.message).toContain('request is too large: the request body is larger than 100 bytes')
  })

  it('reads Retry-After on 429', () => {
    const problem = describeError(httpError(429, { detail: 'rate limited' }, { 'retry-after': '7' }))
    expect(problem).toMatchObject({ kind: 'rate_limited', retryAfterSeconds: 7, retryable: true })
    expect(problem.message).toContain('Try again in 7 s')
  })

  it('explains 5xx with status, detail and Retry-After', () => {
    const problem = describeError(httpError(503, { detail: 'no worker available' }, { 'retry-after': '2' }))
    expect(problem).toMatchObject({ kind: 'server', status: 503, title: 'Service unavailable', retryable: true })
    expect(problem.message).toContain('HTTP 503: no worker available')
    expect(problem.message).toContain('Try again in 2 s')
    expect(describeError(httpError(500, 'oops')).title).toBe('Server error')
  })

  it('points to the API key on 401', () => {
    const problem = describeError(httpError(401, { detail: 'missing bearer token' }))
    expect(problem.kind).toBe('unauthorized')
    expect(problem.message).toContain('API key')
  })

  it('reports a lost connection', () => {
    const problem = describeError(httpError(0))
    expect(problem).toMatchObject({ kind: 'network', title: 'Connection lost', retryable: true })
  })

  it('passes on 404 and 409 details', () => {
    expect(describeError(httpError(404, { detail: 'execution not found' })).message).toBe('execution not found')
    expect(describeError(httpError(409, { detail: 'already finished' })).kind).toBe('conflict')
  })

  it('copes with non-HTTP errors', () => {
    expect(describeError(new Error('boom'))).toMatchObject({ kind: 'unknown', message: 'boom' })
  })

  it('names the file of a 413 or 422 about an input file, and which one it is', () => {
    const big = describeError(
      httpError(413, { detail: [{ loc: ['body', 'files', 2, 'content_base64'], msg: "file 'big.csv': larger than 1000000 bytes", type: 'too_large' }] }),
    )
    expect(big).toMatchObject({ kind: 'too_large', field: 'files.2.content_base64', fileIndex: 2 })
    expect(big.message).toBe("file 'big.csv': larger than 1000000 bytes. Remove it or pick a smaller file.")
    const bad = describeError(
      httpError(422, { detail: [{ loc: ['body', 'files', 0, 'path'], msg: "file '../x': the path is not normalised", type: 'value_error' }] }),
    )
    expect(bad).toMatchObject({ kind: 'invalid', field: 'files.0.path', fileIndex: 0, message: "file '../x': the path is not normalised" })
    // pydantic's own messages do not name the file: the page says which one.
    const missing = describeError(httpError(422, { detail: [{ loc: ['body', 'files', 1, 'content_base64'], msg: 'Field required', type: 'missing' }] }))
    expect(missing.message).toBe('Input file 2 (files.1.content_base64): Field required')
    const tooMany = describeError(httpError(422, { detail: [{ loc: ['body', 'files'], msg: 'List should have at most 8 items', type: 'too_long' }] }))
    expect(tooMany).toMatchObject({ field: 'files', fileIndex: undefined, message: 'Input files (files): List should have at most 8 items' })
  })
})
