// After a security key is registered: first enrolment goes on to its backup codes (a POST form
// on the page), a further key back to where the person was going. Served from our static files.
document.addEventListener("otp_webauthn.register_complete", function () {
  var form = document.getElementById("mfa-after-key");
  if (!form) return;
  if (form.dataset.first === "yes") {
    form.submit();
  } else {
    window.location.href = form.dataset.next || "/";
  }
});
