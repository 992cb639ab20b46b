// Two-step verification pages: the copy button for backup codes, and what follows
// a new security key (naming it). No inline script: the CSP forbids it.
(function () {
  "use strict";

  var copy = document.getElementById("copy-codes");
  if (copy && navigator.clipboard) {
    copy.hidden = false;
    copy.addEventListener("click", function () {
      var source = document.getElementById(copy.dataset.copyTarget);
      navigator.clipboard.writeText(source.value).then(function () {
        copy.textContent = copy.dataset.copiedLabel;
      });
    });
  }

  // django-otp-webauthn passes the server's answer ({id, next}) with the event.
  document.addEventListener("otp_webauthn.register_complete", function (event) {
    var data = event.detail && event.detail.response;
    if (data && typeof data.next === "string" && data.next.charAt(0) === "/") {
      window.location.assign(data.next);
    } else {
      window.location.reload();
    }
  });
})();
