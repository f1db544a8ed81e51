// The OAuth2 callback page: tells the hosted page that opened this popup
// how the sign-in went, at Gatehouse's own origin only, and closes.
const { status, requirementId, openerOrigin } = document.body.dataset;
if (window.opener && openerOrigin) {
  window.opener.postMessage(
    { type: 'gatehouse:oauth2', status, requirement_id: requirementId ?? null },
    openerOrigin,
  );
  window.close();
}
