// Istio's certificate service as it travels: the method path and the two messages
// (proto/istio/v1/auth/ca.proto), shared by the CA on 15012 and by the agent that calls it.
import type protobuf from 'protobufjs';
import { loadVendoredProtos } from '../xds/protos.ts';

export const CREATE_CERTIFICATE_PATH = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

let caTypes: { request: protobuf.Type; response: protobuf.Type } | undefined;

/** The CA service's messages, loaded once. */
export function caServiceTypes(): { request: protobuf.Type; response: protobuf.Type } {
  if (!caTypes) {
    const root = loadVendoredProtos(['istio/v1/auth/ca.proto']);
    caTypes = { request: root.lookupType('istio.v1.auth.IstioCertificateRequest'), response: root.lookupType('istio.v1.auth.IstioCertificateResponse') };
  }
  return caTypes;
}
