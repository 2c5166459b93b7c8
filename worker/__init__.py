"""The job queue: the Huey instance, thin tasks, and a one-job-at-a-time worker loop."""
