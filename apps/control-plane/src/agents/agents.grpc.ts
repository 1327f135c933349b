import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import { AgentServiceService, ConnectRequest } from '@wsmon/proto';
import type { AgentSessionsService } from './agent-sessions.service';
import type { AgentCall, IncomingRequest } from './agent-stream';

export const AGENT_SERVICE = 'wsmon.v1.AgentService';

/**
 * AgentService with a forgiving decoder: grpc-js ends a call whose message does not decode with
 * INTERNAL, but an undecodable message is the agent's fault, so the stream ends with
 * INVALID_ARGUMENT and says what was wrong.
 */
export const agentServiceDefinition = {
  connect: {
    ...AgentServiceService.connect,
    requestDeserialize: (bytes: Buffer): IncomingRequest => {
      try {
        return ConnectRequest.decode(bytes);
      } catch (error) {
        return { malformed: `ConnectRequest: cannot decode (${(error as Error).message})` };
      }
    },
  },
} as const;

export function agentGrpcHandlers(sessions: AgentSessionsService): UntypedServiceImplementation {
  return { connect: (call: AgentCall) => sessions.connect(call) };
}
