import { useLayoutEffect, useRef } from 'react'

/**
 * A ref that always holds the latest committed `value`, for callbacks that run later (event listeners, poll
 * loops, request interceptors) and must see current props or state without re-subscribing.
 */
export function useLatest<T>(value: T) {
  const ref = useRef(value)
  useLayoutEffect(() => {
    ref.current = value
  })
  return ref
}
