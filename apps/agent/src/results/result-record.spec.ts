import { AgentResult } from '@wsmon/proto/agent';
import { describe, expect, it } from 'vitest';
import { probeResult, refusedResult } from '../http/probe-result.spec-helper';
import { resultRecord, toAgentResult } from './result-record';

const RUN = {
  resultId: '3f0c6a52-9e1b-4d7a-8c2e-5b4f1a0d9e77',
  testId: 'test-1',
  testRevision: 7,
  slotMs: Date.parse('2026-03-01T12:00:00.000Z'),
  startedMs: Date.parse('2026-03-01T12:00:00.012Z'),
  attempts: 2,
};

describe(resultRecord.name, () => {
  it('carries every summary field of a success and the whole result, and survives the wire', () => {
    const result = probeResult();
    const record = resultRecord({ ...RUN, runId: 'run-9' }, result);
    const wire = AgentResult.decode(AgentResult.encode(toAgentResult({ sequence: 41, record })).finish());

    expect(wire).toEqual({
      result_id: RUN.resultId,
      sequence: 41,
      test_id: 'test-1',
      test_revision: 7,
      slot_time: new Date(RUN.slotMs),
      started_time: new Date(RUN.startedMs),
      attempts: 2,
      run_id: 'run-9',
      success: true,
      value: result.value,
      reason: '',
      cause: '',
      category: '',
      open_ms: result.timings.open_ms,
      round_trip_ms: result.timings.round_trip_ms ?? undefined,
      total_ms: result.timings.total_ms,
      close_code: result.close?.code,
      tls_not_after: result.tls?.certificate ? new Date(result.tls.certificate.valid_to) : undefined,
      result_json: new TextEncoder().encode(JSON.stringify(result)),
    });
    expect(JSON.parse(JSON.stringify(record))).toEqual(record);
  });

  it('leaves out what a failure did not measure', () => {
    const result = refusedResult();
    const wire = toAgentResult({ sequence: 1, record: resultRecord(RUN, result) });
    expect(wire).toMatchObject({
      success: false,
      reason: result.failure!.reason,
      cause: result.failure!.cause,
      category: result.failure!.category,
      value: undefined,
      open_ms: undefined,
      close_code: undefined,
      tls_not_after: undefined,
      run_id: undefined,
    });
  });
});
