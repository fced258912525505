#!/usr/bin/env bash
# `just down`: stops the services `just up` started (PostgreSQL and RabbitMQ keep running).
source "$(dirname "$0")/lib.sh"
stop_service orders
stop_service payments
stop_service stubs
