"""An independent SAML implementation checks what Entra Setup and its simulated tenant produce.

pysaml2 (PyPI; signatures by the xmlsec1 tool) plays both other parties of a sign-in:

  request  SSO_URL SP_ENTITY_ID ACS_URL REDIRECT_URL
      As the identity provider: parses the AuthnRequest in REDIRECT_URL (HTTP-Redirect binding)
      and prints its ID, Issuer and AssertionConsumerServiceURL as JSON.
  response METADATA_FILE SP_ENTITY_ID ACS_URL REQUEST_ID RESPONSE_FILE
      As the service provider: reads the identity provider's federation metadata, checks the
      Base64 SAMLResponse in RESPONSE_FILE (signature against the metadata's certificate,
      InResponseTo, audience, recipient, time) and prints the NameID and attributes as JSON.

Exit status 0 when accepted; 1 with the reason on stderr when refused.
"""

import json
import sys
import urllib.parse

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import IdPConfig, SPConfig
from saml2.server import Server


def sp_metadata(entity_id, acs):
    return (
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'entityID="{entity_id}"><md:SPSSODescriptor '
        'protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f'<md:AssertionConsumerService Binding="{BINDING_HTTP_POST}" Location="{acs}" index="0"/>'
        "</md:SPSSODescriptor></md:EntityDescriptor>"
    )


def request(sso_url, sp_entity_id, acs, redirect_url):
    config = IdPConfig()
    config.load(
        {
            "entityid": "https://sts.windows.net/peer/",
            "metadata": {"inline": [sp_metadata(sp_entity_id, acs)]},
            "service": {
                "idp": {
                    "endpoints": {
                        "single_sign_on_service": [(sso_url, BINDING_HTTP_REDIRECT)]
                    }
                }
            },
        }
    )
    idp = Server(config=config)
    query = urllib.parse.parse_qs(urllib.parse.urlparse(redirect_url).query)
    req = idp.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT)
    message = req.message
    print(
        json.dumps(
            {
                "id": message.id,
                "issuer": message.issuer.text,
                "acs": message.assertion_consumer_service_url,
                "binding": message.protocol_binding,
                "destination": message.destination,
            }
        )
    )


def response(metadata_file, sp_entity_id, acs, request_id, response_file):
    config = SPConfig()
    config.load(
        {
            "entityid": sp_entity_id,
            "metadata": {"local": [metadata_file]},
            "service": {
                "sp": {
                    "endpoints": {"assertion_consumer_service": [(acs, BINDING_HTTP_POST)]},
                    "want_assertions_signed": True,
                    "want_response_signed": False,
                    "allow_unsolicited": False,
                }
            },
            "accepted_time_diff": 300,
        }
    )
    client = Saml2Client(config=config)
    with open(response_file) as f:
        encoded = f.read().strip()
    resp = client.parse_authn_request_response(
        encoded, BINDING_HTTP_POST, outstanding={request_id: "/"}
    )
    if resp is None:
        raise ValueError("no response")
    print(
        json.dumps(
            {
                "name_id": resp.name_id.text,
                "name_id_format": resp.name_id.format,
                "issuer": resp.issuer(),
                "attributes": resp.ava,
            }
        )
    )


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    try:
        {"request": request, "response": response}[command](*args)
    except Exception as e:  # the refusal is the result
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
