// The code page's enhancements; the page works without them.
//
// - WebOTP: where the browser offers it (Chrome on Android), the code in an
//   origin-bound SMS ("@host #123456" on its last line) fills the code field
//   after the user's one tap, and the form is submitted. Submitting by hand
//   aborts the pending request.
// - The resend button counts its wait down, and is enabled when the wait is
//   over. The server refuses an early resend either way.
//
// An external file with no inline handlers, so a Content-Security-Policy of
// script-src 'self' allows it.
(function () {
  "use strict";

  function fillFromSms(input) {
    var form = input.form;
    if (!form || !("OTPCredential" in window) || !navigator.credentials || !window.AbortController) {
      return;
    }
    var controller = new AbortController();
    var submitted = false;
    form.addEventListener("submit", function () {
      submitted = true;
      controller.abort();
    });
    navigator.credentials
      .get({ otp: { transport: ["sms"] }, signal: controller.signal })
      .then(function (credential) {
        if (submitted || !credential || !credential.code) {
          return;
        }
        input.value = credential.code;
        submitted = true;
        if (typeof form.requestSubmit === "function") {
          form.requestSubmit();
        } else {
          form.submit();
        }
      })
      .catch(function () {
        // Aborted, dismissed or not allowed here: the user types the code.
      });
  }

  function clock(seconds) {
    var minutes = Math.floor(seconds / 60);
    var rest = seconds % 60;
    return minutes + ":" + (rest < 10 ? "0" : "") + rest;
  }

  function countDown(button, status) {
    var wait = parseInt(button.getAttribute("data-wait") || "0", 10);
    if (!(wait > 0) || !status) {
      return;
    }
    var template = status.getAttribute("data-countdown-text") || "";
    var ready = status.getAttribute("data-ready-text") || "";
    var ends = Date.now() + wait * 1000;
    button.disabled = true;
    function tick() {
      var left = Math.ceil((ends - Date.now()) / 1000);
      if (left <= 0) {
        button.disabled = false;
        status.textContent = ready;
        return;
      }
      status.textContent = template.replace("{time}", clock(left));
      window.setTimeout(tick, 1000);
    }
    tick();
  }

  function start() {
    var code = document.getElementById("id_code");
    if (code) {
      fillFromSms(code);
    }
    var resend = document.getElementById("otp-resend");
    if (resend) {
      countDown(resend, document.getElementById("otp-resend-status"));
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
