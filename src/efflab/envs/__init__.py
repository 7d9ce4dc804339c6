"""Environments: Docker env images, host-built wheelhouses, image cleanup and the doctor that checks the tools scripts require."""
