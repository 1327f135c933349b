export { systemClock, sleep, type Clock } from './clock';
export { runWithRetry, type RetryOutcome } from './run-with-retry';
export {
  DEFAULT_MAX_CRON_SPREAD_MS,
  SlotPlan,
  createSlotSequence,
  scheduleKey,
  testPhase,
  type SlotSequence,
  type SlotSequenceOptions,
  type SlotTimes,
} from './slot-plan';
export { FileSlotStore, InMemorySlotStore, type FileSlotStoreOptions, type SlotStore } from './slot-store';
export {
  TestScheduler,
  type RunStart,
  type RunTest,
  type ScheduledTest,
  type SchedulerStats,
  type StopOptions,
  type StopOutcome,
  type TestSchedulerOptions,
} from './test-scheduler';
