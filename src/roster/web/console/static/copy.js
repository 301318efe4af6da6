// Copy buttons: a button with data-copy="ID" puts the text of the element with that id on the
// clipboard and says so on itself for a moment.
for (const button of document.querySelectorAll("button[data-copy]")) {
  button.addEventListener("click", async () => {
    const text = document.getElementById(button.dataset.copy).textContent.trim();
    const label = button.firstChild.textContent;
    try {
      await navigator.clipboard.writeText(text);
      button.firstChild.textContent = "Copied";
    } catch {
      button.firstChild.textContent = "Select and copy it";
    }
    setTimeout(() => { button.firstChild.textContent = label; }, 2000);
  });
}
