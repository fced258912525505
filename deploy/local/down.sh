#!/usr/bin/env bash
# `just down`: stops what `just up` started (PostgreSQL and RabbitMQ keep running).
source "$(dirname "$0")/lib.sh"
stop_service orders
