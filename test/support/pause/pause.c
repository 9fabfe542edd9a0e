/* The sandbox ("pause") process of the node harness's offline pause image
 * (test/support/pause-image.ts): PID 1 of a pod sandbox that holds its namespaces. As PID 1 the
 * kernel delivers only signals it has a handler for, so SIGTERM and SIGINT get one that exits at
 * once (containerd's StopPodSandbox sends SIGTERM first); SIGCHLD reaps orphans. Built with
 * `gcc -Os -static`, so the image needs nothing but this one file. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction action = {0};
  action.sa_handler = stop;
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGINT, &action, NULL);
  action.sa_handler = reap;
  action.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction(SIGCHLD, &action, NULL);
  for (;;) pause();
}
