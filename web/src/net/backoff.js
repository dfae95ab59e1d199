// backoff.js — reconnection delays: exponential growth with "equal jitter" (half the
// window fixed, half random), so a restarted server is not hit by every client at once
// while no delay collapses to zero.
//   attempt 0 -> [base/2, base], 1 -> [base, 2·base], ..., capped at [cap/2, cap] (ms)
export function backoffDelay(attempt, { base = 500, cap = 10000, random = Math.random } = {}) {
  const window = Math.min(cap, base * 2 ** Math.min(attempt, 30));
  return Math.round(window / 2 + random() * (window / 2));
}
